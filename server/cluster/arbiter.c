/* SPDX-License-Identifier: MIT */
#include "arbiter.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "arbiter_policy.h"
#include "ctrl.h"
#include "log.h"

#define URL_MAX     512
#define EVENTS_KEPT 4096

/* One client as one server reported it. */
struct seen {
	char name[CTRL_NAME_MAX + 1];
	int priority;
	uint64_t reservation, limit, used;
};

struct member {
	char url[URL_MAX];
	char id[64];
	uint64_t capacity, used, last_ms;
	int draining, up, is_arbiter;
	Spillway__NodeStats nodes[8]; /* as reported; more are left out */
	size_t nnodes;
	struct seen *clients;
	size_t nclients;
	Spillway__PeerAction **queue; /* for its next reply */
	size_t nqueue;
};

/* A Reclaim the arbiter is waiting on. */
struct decision {
	uint64_t id;
	char client[CTRL_NAME_MAX + 1];
	uint64_t asked, target; /* done once the client holds target or less */
	uint64_t deadline_ms;
	long long badness;
};

struct event {
	uint64_t seq, time_ms, bytes, used, capacity, decision_id;
	long long badness;
	char kind[16];
	char client[CTRL_NAME_MAX + 1];
	char server[URL_MAX];
	char reason[256];
};

/* A client summed over the servers that are up. */
struct total {
	struct arb_client c;
	uint32_t servers;
};

struct arbiter {
	pthread_mutex_t lock;
	struct arbiter_config cfg;
	struct member *members;
	size_t nmembers;
	struct decision *open;
	size_t nopen;
	uint64_t next_decision, decisions;
	struct event *ring; /* EVENTS_KEPT, by seq % EVENTS_KEPT */
	uint64_t next_seq;
	uint64_t evaluated_ms;
	/* Rebuilt by each evaluation. */
	struct total *totals;
	size_t ntotals;
	uint64_t capacity, used;
};

static uint64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint64_t wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

struct arbiter *arbiter_create(const struct arbiter_config *cfg)
{
	struct arbiter *a = calloc(1, sizeof(*a));
	if (!a || !(a->ring = calloc(EVENTS_KEPT, sizeof(*a->ring)))) {
		free(a);
		return NULL;
	}
	pthread_mutex_init(&a->lock, NULL);
	a->cfg = *cfg;
	a->next_decision = 1;
	a->next_seq = 1;
	return a;
}

static void clear_queue(struct member *m)
{
	for (size_t i = 0; i < m->nqueue; i++) {
		free(m->queue[i]->client);
		free(m->queue[i]);
	}
	free(m->queue);
	m->queue = NULL;
	m->nqueue = 0;
}

void arbiter_destroy(struct arbiter *a)
{
	if (!a)
		return;
	for (size_t i = 0; i < a->nmembers; i++) {
		free(a->members[i].clients);
		clear_queue(&a->members[i]);
	}
	free(a->members);
	free(a->open);
	free(a->ring);
	free(a->totals);
	pthread_mutex_destroy(&a->lock);
	free(a);
}

/* --- events ------------------------------------------------------------------- */

static struct event *event_add(struct arbiter *a, const char *kind, const char *client,
			       const char *server, uint64_t bytes)
{
	struct event *e = &a->ring[a->next_seq % EVENTS_KEPT];
	memset(e, 0, sizeof(*e));
	e->seq = a->next_seq++;
	e->time_ms = wall_ms();
	e->bytes = bytes;
	e->used = a->used;
	e->capacity = a->capacity;
	snprintf(e->kind, sizeof(e->kind), "%s", kind);
	snprintf(e->client, sizeof(e->client), "%s", client ? client : "");
	snprintf(e->server, sizeof(e->server), "%s", server ? server : "");
	return e;
}

static void event_log(const struct event *e)
{
	log_info("arbiter: %s%s%s%s%s: %s", e->kind, e->client[0] ? " " : "", e->client,
		 e->server[0] ? " on " : "", e->server, e->reason);
}

/* --- members --------------------------------------------------------------------- */

static struct member *member_find(struct arbiter *a, const char *url)
{
	for (size_t i = 0; i < a->nmembers; i++)
		if (!strcmp(a->members[i].url, url))
			return &a->members[i];
	return NULL;
}

static struct member *member_add(struct arbiter *a, const char *url)
{
	if (a->nmembers == CTRL_CLUSTER_MAX)
		return NULL;
	struct member *v = realloc(a->members, (a->nmembers + 1) * sizeof(*v));
	if (!v)
		return NULL;
	a->members = v;
	struct member *m = &v[a->nmembers++];
	memset(m, 0, sizeof(*m));
	snprintf(m->url, sizeof(m->url), "%s", url);
	return m;
}

/* Down after three missed reports (and never sooner than 1.5 s). */
static uint64_t down_after_ms(const struct arbiter *a)
{
	uint64_t t = 3ull * a->cfg.interval_ms;
	return t < 1500 ? 1500 : t;
}

static int queue_action(struct member *m, int kind, const char *client, uint64_t bytes,
			uint64_t deadline_ms, uint64_t decision)
{
	Spillway__PeerAction **q = realloc(m->queue, (m->nqueue + 1) * sizeof(*q));
	if (!q)
		return -ENOMEM;
	m->queue = q;
	Spillway__PeerAction *pa = malloc(sizeof(*pa));
	char *name = strdup(client);
	if (!pa || !name) {
		free(pa);
		free(name);
		return -ENOMEM;
	}
	spillway__peer_action__init(pa);
	pa->client = name;
	pa->kind = kind;
	pa->bytes = bytes;
	pa->deadline_ms = deadline_ms;
	pa->decision_id = decision;
	q[m->nqueue++] = pa;
	return 0;
}

/* Ask the servers holding client's memory for bytes in all, largest
 * holding first. */
static void spread(struct arbiter *a, int kind, const char *client, uint64_t bytes,
		   uint64_t deadline_ms, uint64_t decision)
{
	uint64_t left = bytes;
	while (left) {
		struct member *best = NULL;
		uint64_t best_used = 0;
		for (size_t i = 0; i < a->nmembers; i++) {
			struct member *m = &a->members[i];
			if (!m->up)
				continue;
			for (size_t j = 0; j < m->nclients; j++) {
				int queued = 0;
				for (size_t k = 0; k < m->nqueue; k++)
					queued |= m->queue[k]->decision_id == decision;
				if (!queued && !strcmp(m->clients[j].name, client) &&
				    m->clients[j].used > best_used) {
					best = m;
					best_used = m->clients[j].used;
				}
			}
		}
		if (!best)
			return;
		uint64_t take = best_used < left ? best_used : left;
		if (queue_action(best, kind, client, take, deadline_ms, decision))
			return;
		left -= take;
	}
}

/* --- evaluation ------------------------------------------------------------------- */

static int by_name(const void *x, const void *y)
{
	return strcmp(((const struct total *)x)->c.name, ((const struct total *)y)->c.name);
}

static struct total *total_find(struct arbiter *a, const char *name)
{
	struct total key;
	snprintf(key.c.name, sizeof(key.c.name), "%s", name);
	return bsearch(&key, a->totals, a->ntotals, sizeof(*a->totals), by_name);
}

/* Sum every up server's report per client. */
static void sum_up(struct arbiter *a)
{
	size_t n = 0;
	a->capacity = a->used = 0;
	for (size_t i = 0; i < a->nmembers; i++)
		if (a->members[i].up) {
			n += a->members[i].nclients;
			a->capacity += a->members[i].capacity;
			a->used += a->members[i].used;
		}
	struct total *t = realloc(a->totals, (n ? n : 1) * sizeof(*t));
	if (!t)
		return;
	a->totals = t;
	size_t k = 0;
	for (size_t i = 0; i < a->nmembers; i++) {
		const struct member *m = &a->members[i];
		for (size_t j = 0; m->up && j < m->nclients; j++) {
			const struct seen *s = &m->clients[j];
			t[k] = (struct total){ .servers = 1 };
			snprintf(t[k].c.name, sizeof(t[k].c.name), "%s", s->name);
			t[k].c.priority = s->priority;
			t[k].c.reservation = s->reservation;
			t[k].c.limit = s->limit;
			t[k].c.used = s->used;
			k++;
		}
	}
	qsort(t, k, sizeof(*t), by_name);
	/* Merge runs of one name: quotas are set on every server alike. */
	size_t out = 0;
	for (size_t i = 0; i < k; i++) {
		if (out && !strcmp(t[out - 1].c.name, t[i].c.name)) {
			t[out - 1].c.used += t[i].c.used;
			t[out - 1].servers++;
		} else {
			t[out++] = t[i];
		}
	}
	a->ntotals = out;
	for (size_t i = 0; i < a->nopen; i++) {
		struct total *c = total_find(a, a->open[i].client);
		if (c && c->c.used > a->open[i].target)
			c->c.pending += c->c.used - a->open[i].target;
	}
}

static void close_decision(struct arbiter *a, size_t i)
{
	a->open[i] = a->open[--a->nopen];
}

/* Open decisions: done, or past their deadline. */
static void follow_up(struct arbiter *a, uint64_t now)
{
	for (size_t i = 0; i < a->nopen;) {
		struct decision *d = &a->open[i];
		struct total *t = total_find(a, d->client);
		uint64_t holds = t ? t->c.used : 0;
		if (holds <= d->target) {
			struct event *e = event_add(a, "complied", d->client, NULL, d->asked);
			e->decision_id = d->id;
			e->badness = d->badness;
			snprintf(e->reason, sizeof(e->reason),
				 "gave back what reclaim %llu asked: holds %llu bytes, target %llu",
				 (unsigned long long)d->id, (unsigned long long)holds,
				 (unsigned long long)d->target);
			event_log(e);
			close_decision(a, i);
			continue;
		}
		if (now < d->deadline_ms) {
			i++;
			continue;
		}
		uint64_t over = holds - d->target;
		spread(a, SPILLWAY__PEER_ACTION__KIND__REVOKE, d->client, over, 0, d->id);
		struct event *e = event_add(a, "revoke", d->client, NULL, over);
		e->decision_id = d->id;
		e->badness = d->badness;
		snprintf(e->reason, sizeof(e->reason),
			 "ignored reclaim %llu: asked for %llu bytes by the deadline, still holds "
			 "%llu over its target; its extents are taken back",
			 (unsigned long long)d->id, (unsigned long long)d->asked,
			 (unsigned long long)over);
		event_log(e);
		close_decision(a, i);
	}
}

/* Past the high watermark: choose victims and ask them. */
static void decide(struct arbiter *a, uint64_t now)
{
	struct arb_cluster cl = { .capacity = a->capacity, .used = a->used,
				  .high_pct = a->cfg.high_pct, .low_pct = a->cfg.low_pct };
	if (!a->ntotals || a->used < arb_high_bytes(&cl))
		return;
	struct arb_client *cs = malloc(a->ntotals * sizeof(*cs));
	struct arb_victim *v = malloc(a->ntotals * sizeof(*v));
	struct arb_rank *scratch = malloc(a->ntotals * sizeof(*scratch));
	if (!cs || !v || !scratch)
		goto out;
	for (size_t i = 0; i < a->ntotals; i++)
		cs[i] = a->totals[i].c;
	uint64_t shortfall = 0;
	size_t nv = arb_plan(&cl, cs, a->ntotals, v, a->ntotals, scratch, &shortfall);
	for (size_t i = 0; i < nv; i++) {
		const struct arb_client *c = &cs[v[i].idx];
		struct decision *o = realloc(a->open, (a->nopen + 1) * sizeof(*o));
		if (!o)
			break;
		a->open = o;
		struct decision *d = &o[a->nopen++];
		*d = (struct decision){ .id = a->next_decision++, .asked = v[i].bytes,
					.target = c->used - v[i].bytes,
					.deadline_ms = now + a->cfg.deadline_ms,
					.badness = v[i].score };
		snprintf(d->client, sizeof(d->client), "%s", c->name);
		a->decisions++;
		a->totals[v[i].idx].c.pending += v[i].bytes;
		spread(a, SPILLWAY__PEER_ACTION__KIND__RECLAIM, c->name, v[i].bytes,
		       a->cfg.deadline_ms, d->id);
		struct event *e = event_add(a, "reclaim", c->name, NULL, v[i].bytes);
		e->decision_id = d->id;
		e->badness = v[i].score;
		snprintf(e->reason, sizeof(e->reason),
			 "cluster at %llu%% >= high watermark %u%%: badness %lld (priority %d, "
			 "%llu bytes over a reservation of %llu), %u ms to comply",
			 (unsigned long long)(a->used * 100 / (a->capacity ? a->capacity : 1)),
			 a->cfg.high_pct, v[i].score, c->priority,
			 (unsigned long long)(c->used - c->reservation),
			 (unsigned long long)c->reservation, a->cfg.deadline_ms);
		event_log(e);
	}
	if (shortfall && !nv) {
		/* Nobody may be asked: say so once per crossing, not per report. */
		static uint64_t said_ms;
		if (now - said_ms > 10000) {
			said_ms = now;
			log_warn("arbiter: cluster above its high watermark, but only reserved or "
				 "priority -1000 memory is left to reclaim");
		}
	}
out:
	free(cs);
	free(v);
	free(scratch);
}

static void evaluate(struct arbiter *a, uint64_t now)
{
	for (size_t i = 0; i < a->nmembers; i++) {
		struct member *m = &a->members[i];
		if (m->up && !m->is_arbiter && now - m->last_ms > down_after_ms(a)) {
			m->up = 0;
			struct event *e = event_add(a, "server-down", NULL, m->url, m->used);
			snprintf(e->reason, sizeof(e->reason), "no report for %llu ms",
				 (unsigned long long)(now - m->last_ms));
			event_log(e);
		}
	}
	sum_up(a);
	follow_up(a, now);
	decide(a, now);
	a->evaluated_ms = now;
}

/* --- reports ----------------------------------------------------------------------- */

static int seen_by_name(const void *x, const void *y)
{
	return strcmp(((const struct seen *)x)->name, ((const struct seen *)y)->name);
}

static void take_report(struct arbiter *a, struct member *m, const Spillway__PeerReport *r,
			uint64_t now)
{
	const Spillway__ServerInfo *si = r->server;
	snprintf(m->id, sizeof(m->id), "%s", si->server_id);
	m->capacity = si->capacity_bytes;
	m->used = si->used_bytes;
	m->is_arbiter = si->arbiter;
	m->last_ms = now;
	m->nnodes = 0;
	for (size_t i = 0; i < si->n_nodes && m->nnodes < 8; i++) {
		Spillway__NodeStats *n = &m->nodes[m->nnodes++];
		spillway__node_stats__init(n);
		n->node = si->nodes[i]->node;
		n->capacity_bytes = si->nodes[i]->capacity_bytes;
		n->used_bytes = si->nodes[i]->used_bytes;
	}
	if (!m->up) {
		m->up = 1;
		struct event *e = event_add(a, "server-up", NULL, m->url, si->capacity_bytes);
		snprintf(e->reason, sizeof(e->reason), "reporting: %llu bytes, %llu used",
			 (unsigned long long)si->capacity_bytes, (unsigned long long)si->used_bytes);
		event_log(e);
	}
	if (m->draining != (int)si->draining) {
		m->draining = si->draining;
		struct event *e = event_add(a, si->draining ? "drain" : "undrain", NULL, m->url,
					    si->used_bytes);
		snprintf(e->reason, sizeof(e->reason), "%s",
			 si->draining ? "operator drains it: no new extents, clients move away"
				      : "operator undrained it");
		event_log(e);
	}
	struct seen *cs = calloc(r->n_clients ? r->n_clients : 1, sizeof(*cs));
	if (!cs)
		return;
	for (size_t i = 0; i < r->n_clients; i++) {
		const Spillway__ClientStats *c = r->clients[i];
		snprintf(cs[i].name, sizeof(cs[i].name), "%s", c->name);
		cs[i].priority = c->priority;
		cs[i].reservation = c->reservation_bytes;
		cs[i].limit = c->limit_bytes;
		cs[i].used = c->used_bytes;
	}
	qsort(cs, r->n_clients, sizeof(*cs), seen_by_name);
	free(m->clients);
	m->clients = cs;
	m->nclients = r->n_clients;
}

/* What name holds on the other servers that are up, from their latest
 * reports (not the last evaluation's sums, which may predate this one). */
static uint64_t used_elsewhere(const struct arbiter *a, const struct member *self,
			       const char *name)
{
	struct seen key;
	snprintf(key.name, sizeof(key.name), "%s", name);
	uint64_t sum = 0;
	for (size_t i = 0; i < a->nmembers; i++) {
		const struct member *m = &a->members[i];
		if (m == self || !m->up)
			continue;
		const struct seen *s = bsearch(&key, m->clients, m->nclients, sizeof(*s),
					       seen_by_name);
		if (s)
			sum += s->used;
	}
	return sum;
}

static Spillway__ServerInfo *member_info(const struct member *m, uint64_t now)
{
	Spillway__ServerInfo *si = malloc(sizeof(*si));
	if (!si)
		return NULL;
	spillway__server_info__init(si);
	si->url = strdup(m->url);
	si->server_id = strdup(m->id);
	if (!si->url || !si->server_id) {
		free(si->url);
		free(si->server_id);
		free(si);
		return NULL;
	}
	si->capacity_bytes = m->capacity;
	si->used_bytes = m->used;
	si->draining = m->draining;
	si->up = m->up;
	si->arbiter = m->is_arbiter;
	si->report_age_ms = now - m->last_ms;
	/* Copies, in one block with their pointers: the reply is packed after
	 * the lock is dropped. free_infos frees the block. */
	size_t n = m->nnodes;
	void *block = n ? malloc(n * (sizeof(*si->nodes) + sizeof(**si->nodes))) : NULL;
	if (block) {
		si->nodes = block;
		Spillway__NodeStats *copies = (Spillway__NodeStats *)(si->nodes + n);
		for (size_t i = 0; i < n; i++) {
			copies[i] = m->nodes[i];
			si->nodes[i] = &copies[i];
		}
		si->n_nodes = n;
	}
	return si;
}

static void free_infos(Spillway__ServerInfo **v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i]->url);
		free(v[i]->server_id);
		free(v[i]->nodes);
		free(v[i]);
	}
	free(v);
}

static Spillway__ServerInfo **member_infos(struct arbiter *a, uint64_t now, size_t *n)
{
	Spillway__ServerInfo **v = calloc(a->nmembers ? a->nmembers : 1, sizeof(*v));
	*n = 0;
	for (size_t i = 0; v && i < a->nmembers; i++)
		if ((v[*n] = member_info(&a->members[i], now)))
			(*n)++;
	return v;
}

int arbiter_report(struct arbiter *a, const Spillway__PeerReport *report,
		   Spillway__PeerReportReply *reply)
{
	spillway__peer_report_reply__init(reply);
	uint64_t now = mono_ms();
	pthread_mutex_lock(&a->lock);
	struct member *m = member_find(a, report->server->url);
	if (!m && !(m = member_add(a, report->server->url))) {
		pthread_mutex_unlock(&a->lock);
		return -ENOMEM;
	}
	take_report(a, m, report, now);
	/* Summing 100 servers' clients per report would cost more than it
	 * tells: evaluate at most twice per report interval. */
	if (now - a->evaluated_ms >= a->cfg.interval_ms / 2 || !a->evaluated_ms)
		evaluate(a, now);
	reply->servers = member_infos(a, now, &reply->n_servers);
	struct arb_cluster cl = { .capacity = a->capacity, .high_pct = a->cfg.high_pct,
				  .low_pct = a->cfg.low_pct };
	reply->cluster_full = a->capacity && a->used >= arb_high_bytes(&cl);
	reply->budgets = calloc(m->nclients ? m->nclients : 1, sizeof(*reply->budgets));
	for (size_t i = 0; reply->budgets && i < m->nclients; i++) {
		Spillway__ClientBudget *b = malloc(sizeof(*b));
		char *name = strdup(m->clients[i].name);
		if (!b || !name) {
			free(b);
			free(name);
			break;
		}
		spillway__client_budget__init(b);
		b->name = name;
		b->used_elsewhere = used_elsewhere(a, m, m->clients[i].name);
		reply->budgets[reply->n_budgets++] = b;
	}
	reply->actions = m->queue;
	reply->n_actions = m->nqueue;
	m->queue = NULL;
	m->nqueue = 0;
	pthread_mutex_unlock(&a->lock);
	return 0;
}

void arbiter_reply_free(Spillway__PeerReportReply *r)
{
	free_infos(r->servers, r->n_servers);
	for (size_t i = 0; i < r->n_budgets; i++) {
		free(r->budgets[i]->name);
		free(r->budgets[i]);
	}
	free(r->budgets);
	for (size_t i = 0; i < r->n_actions; i++) {
		free(r->actions[i]->client);
		free(r->actions[i]);
	}
	free(r->actions);
	spillway__peer_report_reply__init(r);
}

/* --- status and events --------------------------------------------------------------- */

int arbiter_status(struct arbiter *a, Spillway__AdminClusterStatusReply *r)
{
	spillway__admin_cluster_status_reply__init(r);
	uint64_t now = mono_ms();
	pthread_mutex_lock(&a->lock);
	evaluate(a, now);
	r->servers = member_infos(a, now, &r->n_servers);
	r->capacity_bytes = a->capacity;
	r->used_bytes = a->used;
	r->high_pct = a->cfg.high_pct;
	r->low_pct = a->cfg.low_pct;
	r->decisions = a->decisions;
	r->clients = calloc(a->ntotals ? a->ntotals : 1, sizeof(*r->clients));
	for (size_t i = 0; r->clients && i < a->ntotals; i++) {
		const struct total *t = &a->totals[i];
		Spillway__ClusterClient *c = malloc(sizeof(*c));
		if (!c)
			break;
		spillway__cluster_client__init(c);
		if (!(c->name = strdup(t->c.name))) {
			free(c);
			break;
		}
		c->priority = t->c.priority;
		c->reservation_bytes = t->c.reservation;
		c->limit_bytes = t->c.limit;
		c->used_bytes = t->c.used;
		c->pending_bytes = t->c.pending;
		c->badness = arb_badness(&t->c, a->capacity);
		c->servers = t->servers;
		r->clients[r->n_clients++] = c;
	}
	pthread_mutex_unlock(&a->lock);
	return r->servers && r->clients ? 0 : -ENOMEM;
}

void arbiter_status_free(Spillway__AdminClusterStatusReply *r)
{
	free_infos(r->servers, r->n_servers);
	for (size_t i = 0; i < r->n_clients; i++) {
		free(r->clients[i]->name);
		free(r->clients[i]);
	}
	free(r->clients);
	spillway__admin_cluster_status_reply__init(r);
}

int arbiter_events(struct arbiter *a, uint64_t after_seq, uint32_t max,
		   Spillway__AdminEventsReply *r)
{
	spillway__admin_events_reply__init(r);
	pthread_mutex_lock(&a->lock);
	uint64_t first = a->next_seq > EVENTS_KEPT ? a->next_seq - EVENTS_KEPT : 1;
	if (after_seq + 1 > first)
		first = after_seq + 1;
	uint64_t n = a->next_seq > first ? a->next_seq - first : 0;
	if (max && n > max)
		n = max;
	r->last_seq = a->next_seq - 1;
	r->events = calloc(n ? n : 1, sizeof(*r->events));
	for (uint64_t s = first; r->events && s < first + n; s++) {
		const struct event *e = &a->ring[s % EVENTS_KEPT];
		Spillway__Event *v = calloc(1, sizeof(*v));
		if (!v)
			break;
		spillway__event__init(v);
		v->kind = strdup(e->kind);
		v->client = strdup(e->client);
		v->server = strdup(e->server);
		v->reason = strdup(e->reason);
		if (!v->kind || !v->client || !v->server || !v->reason) {
			free(v->kind);
			free(v->client);
			free(v->server);
			free(v->reason);
			free(v);
			break;
		}
		v->seq = e->seq;
		v->time_ms = e->time_ms;
		v->bytes = e->bytes;
		v->badness = e->badness;
		v->cluster_used_bytes = e->used;
		v->cluster_capacity_bytes = e->capacity;
		v->decision_id = e->decision_id;
		r->events[r->n_events++] = v;
		r->last_seq = e->seq;
	}
	pthread_mutex_unlock(&a->lock);
	return r->events ? 0 : -ENOMEM;
}

void arbiter_events_free(Spillway__AdminEventsReply *r)
{
	for (size_t i = 0; i < r->n_events; i++) {
		free(r->events[i]->kind);
		free(r->events[i]->client);
		free(r->events[i]->server);
		free(r->events[i]->reason);
		free(r->events[i]);
	}
	free(r->events);
	spillway__admin_events_reply__init(r);
}
