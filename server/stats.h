/* SPDX-License-Identifier: MIT */
/* Server counters, exported as Prometheus metrics by http.c. */
#ifndef SPILLWAY_SERVER_STATS_H
#define SPILLWAY_SERVER_STATS_H

#include "metrics.h"

enum stats_op { STATS_OP_PING, STATS_OP_READ, STATS_OP_WRITE, STATS_OP_INVALIDATE,
		STATS_OP_CTRL, STATS_OP_COUNT };

/* Why a request or a connection failed. */
enum stats_err {
	STATS_ERR_PROTOCOL,   /* malformed frame or message: connection closed */
	STATS_ERR_CRC,        /* checksum mismatch: connection closed */
	STATS_ERR_AUTH,       /* failed authentication */
	STATS_ERR_NOT_OWNED,  /* extent of another client */
	STATS_ERR_NO_EXTENT,  /* unknown extent id */
	STATS_ERR_RANGE,      /* pages outside the extent */
	STATS_ERR_POOL_FULL,  /* allocation refused: pool or unreserved part full */
	STATS_ERR_OVER_LIMIT, /* allocation refused: client limit */
	STATS_ERR_ABSENT,     /* read of pages never written or invalidated */
	STATS_ERR_INFLIGHT,   /* too many requests in flight: connection closed */
	STATS_ERR_UNREGISTERED, /* data op before REGISTER */
	STATS_ERR_STALE,      /* WRITE/INVALIDATE superseded by a newer version (pages) */
	STATS_ERR_COUNT
};

struct stats {
	atomic_uint_fast64_t ops[STATS_OP_COUNT];      /* requests served, by op */
	atomic_uint_fast64_t bytes[STATS_OP_COUNT];    /* page bytes moved, by op */
	atomic_uint_fast64_t errors[STATS_ERR_COUNT];  /* failures, by kind */
	atomic_uint_fast64_t connections_total;        /* accepted since start */
	atomic_uint_fast64_t connections_open;         /* open now (gauge) */
	struct metrics_hist latency[STATS_OP_COUNT];   /* frame in -> reply queued */
	/* Cluster: clients the last report to the arbiter left out, past
	 * PEER_REPORT_CLIENTS_MAX (gauge). */
	atomic_uint_fast64_t report_clients_left_out;
};

extern struct stats server_stats;

/* Register every counter above with m. 0 or -ENOMEM. */
int stats_register(struct metrics *m);

#endif
