/* SPDX-License-Identifier: MIT */
#include "nbd_buf.h"

#include <errno.h>
#include <pthread.h>
#include <sys/mman.h>
#include <time.h>

#include "nbd_stats.h"

static struct {
	pthread_mutex_t lock;
	pthread_cond_t freed;
	unsigned max, used;            /* buffers allowed, handed out */
	uint8_t *keep[NBD_BUF_KEEP];   /* idle buffers kept for reuse */
	unsigned nkeep;
} B = { .lock = PTHREAD_MUTEX_INITIALIZER, .freed = PTHREAD_COND_INITIALIZER, .max = 1 };

void nbd_buf_init(uint64_t budget)
{
	uint64_t n = budget / NBD_BUF_SIZE;
	pthread_mutex_lock(&B.lock);
	B.max = n < 1 ? 1 : n > 1000000 ? 1000000 : (unsigned)n;
	pthread_mutex_unlock(&B.lock);
}

void nbd_buf_destroy(void)
{
	pthread_mutex_lock(&B.lock);
	while (B.nkeep)
		munmap(B.keep[--B.nkeep], NBD_BUF_SIZE);
	pthread_mutex_unlock(&B.lock);
}

uint8_t *nbd_buf_get(int wait_ms)
{
	pthread_mutex_lock(&B.lock);
	if (B.used >= B.max) {
		atomic_fetch_add(&nbd_stats.buffer_waits, 1);
		struct timespec until;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += wait_ms / 1000;
		until.tv_nsec += (long)(wait_ms % 1000) * 1000000;
		if (until.tv_nsec >= 1000000000) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000;
		}
		while (B.used >= B.max && wait_ms > 0 && pthread_cond_timedwait(&B.freed, &B.lock, &until) != ETIMEDOUT)
			;
		if (B.used >= B.max) {
			pthread_mutex_unlock(&B.lock);
			atomic_fetch_add(&nbd_stats.buffer_refused, 1);
			return NULL;
		}
	}
	B.used++;
	uint8_t *b = B.nkeep ? B.keep[--B.nkeep] : NULL;
	pthread_mutex_unlock(&B.lock);
	if (!b) {
		void *m = mmap(NULL, NBD_BUF_SIZE, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (m == MAP_FAILED) {
			nbd_buf_put(NULL);
			atomic_fetch_add(&nbd_stats.buffer_refused, 1);
			return NULL;
		}
		b = m;
	}
	atomic_fetch_add(&nbd_stats.buffer_bytes, NBD_BUF_SIZE);
	return b;
}

/* b NULL: give back the slot of a buffer that could not be mapped. */
void nbd_buf_put(uint8_t *b)
{
	if (b)
		atomic_fetch_sub(&nbd_stats.buffer_bytes, NBD_BUF_SIZE);
	pthread_mutex_lock(&B.lock);
	B.used--;
	if (b && B.nkeep < NBD_BUF_KEEP) {
		B.keep[B.nkeep++] = b;
		b = NULL;
	}
	pthread_cond_signal(&B.freed);
	pthread_mutex_unlock(&B.lock);
	if (b)
		munmap(b, NBD_BUF_SIZE);
}
