/* SPDX-License-Identifier: MIT */
#include "nbd_log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>

#include "log.h"
#include "nbd_io.h"

static struct {
	pthread_mutex_t lock;
	int64_t window_start_ms;
	unsigned lines;          /* written in this window */
	unsigned long long dropped;
} R = { .lock = PTHREAD_MUTEX_INITIALIZER };

void nbd_log_peer(const char *fmt, ...)
{
	if (!log_enabled(LOG_WARN))
		return;
	int64_t now = nbd_now_ms();
	unsigned long long dropped = 0;
	pthread_mutex_lock(&R.lock);
	if (!R.window_start_ms || now - R.window_start_ms >= NBD_LOG_WINDOW_S * 1000) {
		R.window_start_ms = now;
		R.lines = 0;
	}
	int emit = R.lines < NBD_LOG_BURST;
	if (emit) {
		R.lines++;
		dropped = R.dropped;
		R.dropped = 0;
	} else {
		R.dropped++;
	}
	pthread_mutex_unlock(&R.lock);
	if (!emit)
		return;
	char line[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (dropped)
		log_warn("%s (%llu similar NBD warnings dropped before this one)", line, dropped);
	else
		log_warn("%s", line);
}
