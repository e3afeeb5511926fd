/* SPDX-License-Identifier: MIT */
/* NBD counters (all connections, all exports), exported in /metrics. */
#ifndef SPILLWAY_NBD_STATS_H
#define SPILLWAY_NBD_STATS_H

#include "metrics.h"

enum nbd_stats_closed {
	NBD_CLOSED_HANDSHAKE_TIMEOUT, /* negotiation not done by --nbd-handshake-timeout */
	NBD_CLOSED_IDLE_TIMEOUT,      /* no request within the idle limit */
	NBD_CLOSED_STALL_TIMEOUT,     /* a started request paused past --nbd-stall-timeout */
	NBD_CLOSED_COUNT
};

struct nbd_stats {
	atomic_uint_fast64_t accepted;          /* connections accepted */
	atomic_uint_fast64_t open;              /* connections open now (gauge) */
	atomic_uint_fast64_t refused;           /* closed at accept: --nbd-max-connections */
	atomic_uint_fast64_t closed[NBD_CLOSED_COUNT]; /* ended by a timeout, by which */
	atomic_uint_fast64_t requests;          /* transmission requests received */
	atomic_uint_fast64_t request_errors;    /* requests answered with an NBD error */
	atomic_uint_fast64_t buffer_bytes;      /* transfer buffers in use now (gauge) */
	atomic_uint_fast64_t buffer_waits;      /* requests that waited for a buffer */
	atomic_uint_fast64_t buffer_refused;    /* requests answered ENOMEM: no buffer in time */
};

extern struct nbd_stats nbd_stats;

/* Register every counter above with m. 0 or -ENOMEM. */
int nbd_stats_register(struct metrics *m);

#endif
