/* SPDX-License-Identifier: MIT */
#include "worker.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <urcu.h>

#include "conn.h"
#include "log.h"
#include "numa_place.h"
#include "server.h"
#include "slab.h"

#define DRAIN_SECONDS 5
#define SWEEP_MS 250 /* timeouts are whole seconds: a quarter is precise enough */

struct pending_fd {
	struct pending_fd *next;
	struct conn_origin o;
};

static void maybe_finish(struct worker *w)
{
	if (w->draining && w->nconns == 0)
		event_base_loopbreak(w->base);
}

void worker_conn_closed(struct worker *w, struct conn *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else
		w->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	w->nconns--;
	maybe_finish(w);
}

static void on_drain_timeout(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct worker *w = arg;
	if (w->nconns)
		log_warn("worker %d: %d connections still busy after %d s; closing them",
			 w->index, w->nconns, DRAIN_SECONDS);
	event_base_loopbreak(w->base);
}

static void on_wake(evutil_socket_t fd, short what, void *arg)
{
	(void)what;
	struct worker *w = arg;
	uint64_t v;
	if (read(fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		log_warn("worker %d: eventfd read: %s", w->index, strerror(errno));
	pthread_mutex_lock(&w->lock);
	struct pending_fd *q = w->queue;
	w->queue = NULL;
	int stopping = w->stopping;
	pthread_mutex_unlock(&w->lock);
	while (q) {
		struct pending_fd *next = q->next;
		if (stopping)
			conn_origin_close(&q->o);
		else
			conn_start(w, &q->o);
		free(q);
		q = next;
	}
	if (stopping && !w->draining) {
		w->draining = 1;
		struct timeval tv = { DRAIN_SECONDS, 0 };
		w->drain_timer = evtimer_new(w->base, on_drain_timeout, w);
		if (w->drain_timer)
			evtimer_add(w->drain_timer, &tv);
		for (struct conn *c = w->conns, *next; c; c = next) {
			next = c->next;
			conn_drain(c); /* may free c */
		}
		maybe_finish(w);
	}
}

static void on_sweep(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct worker *w = arg;
	w->now_ms = worker_clock_ms();
	conn_sweep(w);
}

uint64_t worker_clock_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	rcu_register_thread();
	event_base_dispatch(w->base);
	/* Whatever is left after the drain deadline. */
	while (w->conns) {
		conn_abort(w->conns);
	}
	slab_thread_flush();
	rcu_unregister_thread();
	return NULL;
}

/* Log where the workers run: "workers on node 0: 0 2; node 1: 1 3". */
static void log_placement(const struct server *s, const int *nodes, int nnodes)
{
	char line[512];
	int len = snprintf(line, sizeof(line), "workers on");
	for (int k = 0; k < nnodes && len < (int)sizeof(line); k++) {
		len += snprintf(line + len, sizeof(line) - (size_t)len, "%s node %d:",
				k ? ";" : "", nodes[k]);
		for (int i = 0; i < s->nworkers && len < (int)sizeof(line); i++)
			if (s->workers[i].node == nodes[k])
				len += snprintf(line + len, sizeof(line) - (size_t)len, " %d", i);
	}
	log_info("%s", line);
}

int workers_start(struct server *s, int n)
{
	s->workers = calloc((size_t)n, sizeof(*s->workers));
	if (!s->workers)
		return -ENOMEM;
	/* With one node there is nothing to choose: leave the scheduler free. */
	int nodes[64];
	int nnodes = numa_cpu_nodes(nodes, 64);
	if (nnodes < 2)
		nnodes = 0;
	for (int i = 0; i < n; i++) {
		struct worker *w = &s->workers[i];
		w->srv = s;
		w->index = i;
		w->node = -1;
		pthread_mutex_init(&w->lock, NULL);
		w->base = event_base_new();
		w->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (!w->base || w->wake_fd < 0)
			return -ENOMEM;
		w->wake_ev = event_new(w->base, w->wake_fd, EV_READ | EV_PERSIST, on_wake, w);
		if (!w->wake_ev || event_add(w->wake_ev, NULL))
			return -ENOMEM;
		w->now_ms = worker_clock_ms();
		w->sweep = event_new(w->base, -1, EV_PERSIST, on_sweep, w);
		struct timeval every = { 0, SWEEP_MS * 1000 };
		if (!w->sweep || event_add(w->sweep, &every))
			return -ENOMEM;
		pthread_attr_t attr;
		pthread_attr_init(&attr);
		if (nnodes && numa_pin_attr(&attr, nodes[i % nnodes]) == 0)
			w->node = nodes[i % nnodes];
		int rc = pthread_create(&w->thread, &attr, worker_main, w);
		pthread_attr_destroy(&attr);
		if (rc)
			return -EAGAIN;
		s->nworkers++;
	}
	if (nnodes)
		log_placement(s, nodes, nnodes);
	return 0;
}

static void wake(struct worker *w)
{
	uint64_t one = 1;
	if (write(w->wake_fd, &one, sizeof(one)) < 0)
		log_warn("worker %d: eventfd write: %s", w->index, strerror(errno));
}

/* Round robin over the workers on node (any node if node < 0 or none is
 * there): the next one at or after next_worker. */
static struct worker *pick(struct server *s, int node)
{
	unsigned n = (unsigned)s->nworkers, start = s->next_worker % n;
	unsigned i = start;
	if (node >= 0)
		for (unsigned k = 0; k < n; k++)
			if (s->workers[(start + k) % n].node == node) {
				i = (start + k) % n;
				break;
			}
	s->next_worker = i + 1;
	return &s->workers[i];
}

void workers_hand_off(struct server *s, const struct conn_origin *o)
{
	struct worker *w = pick(s, o->node);
	log_debug("%s: to worker %d (node %d), connection's node %d", o->peer, w->index, w->node,
		  o->node);
	struct pending_fd *p = malloc(sizeof(*p));
	if (!p) {
		struct conn_origin copy = *o;
		conn_origin_close(&copy);
		return;
	}
	p->o = *o;
	pthread_mutex_lock(&w->lock);
	p->next = w->queue;
	w->queue = p;
	pthread_mutex_unlock(&w->lock);
	wake(w);
}

void workers_stop(struct server *s)
{
	for (int i = 0; i < s->nworkers; i++) {
		struct worker *w = &s->workers[i];
		pthread_mutex_lock(&w->lock);
		w->stopping = 1;
		pthread_mutex_unlock(&w->lock);
		wake(w);
	}
	for (int i = 0; i < s->nworkers; i++) {
		struct worker *w = &s->workers[i];
		pthread_join(w->thread, NULL);
		if (w->drain_timer)
			event_free(w->drain_timer);
		event_free(w->wake_ev);
		event_free(w->sweep);
		event_base_free(w->base);
		close(w->wake_fd);
		pthread_mutex_destroy(&w->lock);
	}
	free(s->workers);
	s->workers = NULL;
	s->nworkers = 0;
}
