/* SPDX-License-Identifier: MIT */
#include "peer_report.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <urcu.h>

#include "arbiter.h"
#include "client.h"
#include "cluster.h"
#include "ctrl.h"
#include "log.h"
#include "registry.h"
#include "server.h"
#include "stats.h"
#include "wire_cluster.h"

#define MIN_GAP_MS 20 /* reports on change come no closer than this */

/* A client in a report takes at most this many bytes encoded (a 64-byte
 * name and every number at its widest), the server at most SERVER_BYTES
 * (a 512-byte URL, a 256-byte id, 256 nodes): PEER_REPORT_CLIENTS_MAX of
 * them always fit one control frame. */
#define CLIENT_BYTES 110
#define SERVER_BYTES (1024 + 256 * 32)
_Static_assert((size_t)PEER_REPORT_CLIENTS_MAX * CLIENT_BYTES + SERVER_BYTES + 64 <=
		       SPILL_MAX_CTRL_PAYLOAD,
	       "a peer report fits one control frame");

struct peer_reporter {
	struct server *s;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int stop, poked;
	struct client *arb;  /* connection to --arbiter-url */
	int failures;        /* reports in a row that found no arbiter */
	int cut_logged;      /* said once that a report left clients out */
};

static void poke(void *arg)
{
	struct peer_reporter *r = arg;
	pthread_mutex_lock(&r->lock);
	r->poked = 1;
	pthread_cond_signal(&r->cond);
	pthread_mutex_unlock(&r->lock);
}

/* Sleep until ms from now, or until stopped; with wake_on_poke, also until
 * usage changes. Returns 0 once stopped. */
static int wait_ms(struct peer_reporter *r, unsigned ms, int wake_on_poke)
{
	struct timespec until;
	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += ms / 1000;
	until.tv_nsec += (long)(ms % 1000) * 1000000;
	if (until.tv_nsec >= 1000000000) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&r->lock);
	while (!r->stop && !(wake_on_poke && r->poked))
		if (pthread_cond_timedwait(&r->cond, &r->lock, &until) == ETIMEDOUT)
			break;
	r->poked = 0;
	int go = !r->stop;
	pthread_mutex_unlock(&r->lock);
	return go;
}

/* One round trip to the remote arbiter; 0 with *reply filled (free with
 * arbiter_reply_free), or -errno. */
static int send_remote(struct peer_reporter *r, const struct peer_report *rep,
		       struct arbiter_reply *reply)
{
	struct server *s = r->s;
	char why[256] = "";
	if (!r->arb) {
		struct client_opts o = {
			.psk = s->have_admin_psk ? &s->admin_psk : s->have_psk ? &s->psk : NULL,
			.timeout_ms = (int)(s->opt.report_interval_ms * 3 < 2000
						    ? 2000 : s->opt.report_interval_ms * 3),
		};
		int rc = client_connect(s->opt.arbiter_url, &o, &r->arb, why, sizeof(why));
		if (rc) {
			if (r->failures == 0)
				log_warn("arbiter %s: %s", s->opt.arbiter_url, why[0] ? why : strerror(-rc));
			return rc;
		}
		log_info("reporting to the arbiter at %s", s->opt.arbiter_url);
	}
	struct wire_msg msg;
	Spillway__Ctrl *answer = NULL;
	int rc = wire_cluster_peer_report(rep, &msg);
	if (!rc)
		rc = client_ctrl(r->arb, &msg.ctrl, &answer, why, sizeof(why));
	wire_cluster_msg_free(&msg);
	if (!rc && answer->msg_case != SPILLWAY__CTRL__MSG_PEER_REPORT_REPLY) {
		rc = -EPROTO;
		snprintf(why, sizeof(why), "%s", "the arbiter answered something else");
	}
	if (!rc)
		rc = wire_cluster_arbiter_reply_from(answer->peer_report_reply, reply);
	if (answer)
		ctrl_free(answer);
	if (rc) {
		log_warn("arbiter %s: report refused: %s", s->opt.arbiter_url,
			 why[0] ? why : strerror(-rc));
		client_close(r->arb);
		r->arb = NULL;
	}
	return rc;
}

static int by_used_desc(const void *x, const void *y)
{
	uint64_t a = ((const struct client_usage *)x)->used, b = ((const struct client_usage *)y)->used;
	return a < b ? 1 : a > b ? -1 : 0;
}

/* Which of this server's clients a report carries: those holding memory
 * here, and those connected (they may allocate before the next report, and
 * need their budget). An identity in its grace period holding nothing
 * tells the arbiter nothing, and thousands of them must not outgrow the
 * frame. Past PEER_REPORT_CLIENTS_MAX, the largest holders; the others'
 * bytes count in the server's total only. Keeps v's first entries;
 * returns how many. */
static size_t select_clients(struct client_usage *v, size_t n)
{
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (v[i].used || v[i].connections)
			v[k++] = v[i];
	size_t cut = 0;
	if (k > PEER_REPORT_CLIENTS_MAX) {
		qsort(v, k, sizeof(*v), by_used_desc);
		cut = k - PEER_REPORT_CLIENTS_MAX;
		k = PEER_REPORT_CLIENTS_MAX;
	}
	atomic_store(&server_stats.report_clients_left_out, cut);
	return k;
}

static void report_once(struct peer_reporter *r)
{
	struct server *s = r->s;
	struct node_usage nodes[s->pools->npools];
	struct peer_report rep = { 0 };
	cluster_self_info(s, &rep.server, nodes);
	size_t n = 0;
	struct client_usage *clients = cluster_client_usage(s, &n);
	size_t sent = select_clients(clients, n);
	if (atomic_load(&server_stats.report_clients_left_out) && !r->cut_logged) {
		log_warn("report to the arbiter: more than %d clients hold memory here or are "
			 "connected; the %d largest are reported one by one, the others only in "
			 "the server's total (metric spillway_cluster_report_clients_left_out)",
			 PEER_REPORT_CLIENTS_MAX, PEER_REPORT_CLIENTS_MAX);
		r->cut_logged = 1;
	}
	rep.clients = clients;
	rep.nclients = sent;
	struct arbiter_reply reply;
	if (s->arbiter) {
		if (arbiter_report(s->arbiter, &rep, &reply) == 0)
			cluster_apply(s, &reply);
		arbiter_reply_free(&reply);
	} else if (send_remote(r, &rep, &reply) == 0) {
		if (r->failures)
			log_info("arbiter %s: reachable again", s->opt.arbiter_url);
		r->failures = 0;
		cluster_apply(s, &reply);
		arbiter_reply_free(&reply);
	} else if (++r->failures == 3) {
		log_warn("arbiter %s unreachable: admitting by this server's pool alone",
			 s->opt.arbiter_url);
		cluster_arbiter_lost(s);
	}
	free(clients);
}

static void *run(void *arg)
{
	struct peer_reporter *r = arg;
	rcu_register_thread();
	do {
		report_once(r);
		/* Changes wake us early, but no report follows the last one
		 * closer than MIN_GAP_MS. */
	} while (wait_ms(r, MIN_GAP_MS, 0) &&
		 wait_ms(r, r->s->opt.report_interval_ms > MIN_GAP_MS
				    ? r->s->opt.report_interval_ms - MIN_GAP_MS : 0, 1));
	rcu_unregister_thread();
	return NULL;
}

int peer_report_start(struct server *s)
{
	if (!s->opt.arbiter && !s->opt.arbiter_url[0])
		return 0;
	if (s->opt.arbiter) {
		struct arbiter_config cfg = { s->opt.high_pct, s->opt.low_pct,
					      s->opt.reclaim_deadline_ms, s->opt.report_interval_ms };
		if (!(s->arbiter = arbiter_create(&cfg)))
			return -ENOMEM;
		log_info("arbitrating the cluster: watermarks %u%%/%u%%, %u ms to comply",
			 cfg.high_pct, cfg.low_pct, cfg.deadline_ms);
	}
	struct peer_reporter *r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->s = s;
	pthread_mutex_init(&r->lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&r->cond, &ca);
	pthread_condattr_destroy(&ca);
	s->reporter = r;
	registry_on_change(s->reg, poke, r);
	int rc = pthread_create(&r->thread, NULL, run, r);
	if (rc) {
		registry_on_change(s->reg, NULL, NULL);
		s->reporter = NULL;
		free(r);
		return -rc;
	}
	return 0;
}

void peer_report_stop(struct server *s)
{
	struct peer_reporter *r = s->reporter;
	if (r) {
		registry_on_change(s->reg, NULL, NULL);
		pthread_mutex_lock(&r->lock);
		r->stop = 1;
		pthread_cond_signal(&r->cond);
		pthread_mutex_unlock(&r->lock);
		pthread_join(r->thread, NULL);
		if (r->arb)
			client_close(r->arb);
		pthread_cond_destroy(&r->cond);
		pthread_mutex_destroy(&r->lock);
		free(r);
		s->reporter = NULL;
	}
	arbiter_destroy(s->arbiter);
	s->arbiter = NULL;
}
