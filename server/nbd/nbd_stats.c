/* SPDX-License-Identifier: MIT */
#include "nbd_stats.h"

#include <errno.h>
#include <stdio.h>

struct nbd_stats nbd_stats;

static const char *const closed_names[NBD_CLOSED_COUNT] = {
	"handshake_timeout", "idle_timeout", "stall_timeout",
};

static uint64_t read_gauge(void *arg)
{
	return atomic_load((atomic_uint_fast64_t *)arg);
}

int nbd_stats_register(struct metrics *m)
{
	struct nbd_stats *s = &nbd_stats;
	char labels[48];
	int rc = 0;
	rc |= metrics_add_counter(m, "spillway_nbd_connections_total", "",
				  "NBD connections accepted", &s->accepted);
	rc |= metrics_add_gauge(m, "spillway_nbd_connections", "", "NBD connections open now",
				read_gauge, &s->open);
	rc |= metrics_add_counter(m, "spillway_nbd_refused_total", "",
				  "NBD connections closed at accept: --nbd-max-connections reached",
				  &s->refused);
	for (int i = 0; i < NBD_CLOSED_COUNT; i++) {
		snprintf(labels, sizeof(labels), "reason=\"%s\"", closed_names[i]);
		rc |= metrics_add_counter(m, "spillway_nbd_timeouts_total", labels,
					  "NBD connections closed by a timeout, by which",
					  &s->closed[i]);
	}
	rc |= metrics_add_counter(m, "spillway_nbd_requests_total", "",
				  "NBD transmission requests received", &s->requests);
	rc |= metrics_add_counter(m, "spillway_nbd_request_errors_total", "",
				  "NBD requests answered with an error", &s->request_errors);
	rc |= metrics_add_gauge(m, "spillway_nbd_buffer_bytes", "",
				"NBD transfer buffers in use now", read_gauge, &s->buffer_bytes);
	rc |= metrics_add_counter(m, "spillway_nbd_buffer_waits_total", "",
				  "NBD requests that waited for buffer memory (--nbd-buffer-memory)",
				  &s->buffer_waits);
	rc |= metrics_add_counter(m, "spillway_nbd_buffer_refused_total", "",
				  "NBD requests answered ENOMEM: no buffer within --nbd-stall-timeout",
				  &s->buffer_refused);
	return rc ? -ENOMEM : 0;
}
