/* SPDX-License-Identifier: MIT */
/* The spillwayd process: everything its threads share. */
#ifndef SPILLWAY_SERVER_H
#define SPILLWAY_SERVER_H

#include <stdatomic.h>
#include <stdint.h>

#include "auth.h"
#include "metrics.h"
#include "options.h"
#include "pool.h"
#include "registry.h"

struct worker;
struct http;
struct event_base;
struct evconnlistener;
struct cluster;
struct arbiter;
struct peer_reporter;

struct server {
	struct server_options opt;
	struct pool_set *pools;
	struct registry *reg;
	struct auth_psk psk;
	int have_psk;
	struct auth_psk admin_psk;
	int have_admin_psk;
	struct metrics *metrics;
	struct slab_cache *conn_cache;     /* struct conn */
	struct http *http;
	struct worker *workers;
	int nworkers;
	unsigned next_worker;
	struct event_base *base;           /* main thread: listeners, signals, timers */
	struct evconnlistener *listeners[OPT_MAX_LISTEN];
	int nlisteners;
	int tcp_port;                       /* first TCP listener's bound port */
	int rdma_port;                      /* first RDMA listener's bound port */
	uint64_t start_ms;
	char server_id[64];
	struct cluster *cluster;           /* cluster.c */
	struct arbiter *arbiter;           /* with --arbiter: arbiter.c */
	struct peer_reporter *reporter;    /* peer_report.c */
};

#endif
