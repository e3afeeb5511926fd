/* SPDX-License-Identifier: MIT */
/*
 * Worker threads: each owns one libevent loop and the connections handed to
 * it. The accepting thread passes a new socket through the worker's queue and
 * wakes it with an eventfd; from then on only that worker touches the
 * connection, so connection state needs no lock. A timer sweeps each
 * worker's connections a few times a second (conn_sweep) for timeouts.
 */
#ifndef SPILLWAY_WORKER_H
#define SPILLWAY_WORKER_H

#include <pthread.h>
#include <stdint.h>

#include "admission.h"

struct server;
struct conn;
struct stream;
struct rdma_domain;

/* An accepted connection on its way to a worker. */
struct conn_origin {
	struct stream *stream;      /* its bytes; closing it releases dom too */
	struct rdma_domain *dom;    /* RDMA: its QP's protection domain, else NULL */
	char peer[64];
	int node;                   /* NUMA node the device is on, or -1 */
	int local_operator;         /* admin socket: the peer passed SO_PEERCRED */
	struct admission_ticket adm; /* its place, released when it closes */
};

struct worker {
	struct server *srv;
	int index;
	int node;                  /* NUMA node it is pinned to, or -1 */
	pthread_t thread;
	struct event_base *base;
	int wake_fd;
	struct event *wake_ev;
	pthread_mutex_t lock;      /* guards the hand-off queue and stopping */
	struct pending_fd *queue;
	int stopping;              /* set by workers_stop, under lock */
	int draining;              /* the worker's own view of it: worker thread only */
	struct conn *conns;        /* open connections, for draining at shutdown */
	int nconns;
	struct event *drain_timer;
	struct event *sweep;       /* conn_sweep: timeouts, held output, idle buffers */
	uint64_t now_ms;           /* monotonic, as of the last sweep (coarse clock) */
};

/* On a machine with more than one NUMA node (with CPUs), worker i runs on
 * the CPUs of the (i mod nodes)th such node. */
int workers_start(struct server *s, int n);
/* Give an accepted connection to a worker: round robin among the workers on
 * o->node if it is >= 0 and there are any, else among all of them. */
void workers_hand_off(struct server *s, const struct conn_origin *o);
/* Stop: every worker finishes the requests it has read, flushes replies
 * (at most 5 s), closes its connections and exits; then join them. */
void workers_stop(struct server *s);

/* CLOCK_MONOTONIC in milliseconds. */
uint64_t worker_clock_ms(void);

/* Called by conn.c when a connection closes. */
void worker_conn_closed(struct worker *w, struct conn *c);

#endif
