/* SPDX-License-Identifier: MIT */
#include "arbiter.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "arbiter_policy.h"
#include "log.h"

#define EVENTS_KEPT  4096
#define MEMBER_NODES 8

/* A server as its latest report described it. info.nodes stays unset (a
 * member moves when members grows): nodes holds them, and member_infos
 * points a listed copy at a copy of them; so with info.report_age_ms. */
struct member {
	struct server_info info;
	struct node_usage nodes[MEMBER_NODES]; /* as reported; more are left out */
	uint64_t last_ms;
	struct client_usage *clients; /* by name */
	size_t nclients;
	struct peer_action *queue; /* for its next reply */
	size_t nqueue;
};

/* A Reclaim the arbiter is waiting on. */
struct decision {
	uint64_t id;
	char client[CLUSTER_NAME_MAX + 1];
	uint64_t asked, target; /* done once the client holds target or less */
	uint64_t deadline_ms;
	long long badness;
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
	struct cluster_event *ring; /* EVENTS_KEPT, by seq % EVENTS_KEPT */
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

void arbiter_destroy(struct arbiter *a)
{
	if (!a)
		return;
	for (size_t i = 0; i < a->nmembers; i++) {
		free(a->members[i].clients);
		free(a->members[i].queue);
	}
	free(a->members);
	free(a->open);
	free(a->ring);
	free(a->totals);
	pthread_mutex_destroy(&a->lock);
	free(a);
}

/* --- events ------------------------------------------------------------------- */

static struct cluster_event *event_add(struct arbiter *a, const char *kind, const char *client,
			       const char *server, uint64_t bytes)
{
	struct cluster_event *e = &a->ring[a->next_seq % EVENTS_KEPT];
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

static void event_log(const struct cluster_event *e)
{
	log_info("arbiter: %s%s%s%s%s: %s", e->kind, e->client[0] ? " " : "", e->client,
		 e->server[0] ? " on " : "", e->server, e->reason);
}

/* --- members --------------------------------------------------------------------- */

static struct member *member_find(struct arbiter *a, const char *url)
{
	for (size_t i = 0; i < a->nmembers; i++)
		if (!strcmp(a->members[i].info.url, url))
			return &a->members[i];
	return NULL;
}

static struct member *member_add(struct arbiter *a, const char *url)
{
	if (a->nmembers == CLUSTER_SERVERS_MAX)
		return NULL;
	struct member *v = realloc(a->members, (a->nmembers + 1) * sizeof(*v));
	if (!v)
		return NULL;
	a->members = v;
	struct member *m = &v[a->nmembers++];
	memset(m, 0, sizeof(*m));
	snprintf(m->info.url, sizeof(m->info.url), "%s", url);
	return m;
}

/* Down after three missed reports (and never sooner than 1.5 s). */
static uint64_t down_after_ms(const struct arbiter *a)
{
	uint64_t t = 3ull * a->cfg.interval_ms;
	return t < 1500 ? 1500 : t;
}

static int queue_action(struct member *m, enum peer_action_kind kind, const char *client,
			uint64_t bytes, uint64_t deadline_ms, uint64_t decision)
{
	struct peer_action *q = realloc(m->queue, (m->nqueue + 1) * sizeof(*q));
	if (!q)
		return -ENOMEM;
	m->queue = q;
	struct peer_action *pa = &q[m->nqueue++];
	*pa = (struct peer_action){ .kind = kind, .bytes = bytes, .deadline_ms = deadline_ms,
				    .decision_id = decision };
	snprintf(pa->client, sizeof(pa->client), "%s", client);
	return 0;
}

/* Ask the servers holding client's memory for bytes in all, largest
 * holding first. */
static void spread(struct arbiter *a, enum peer_action_kind kind, const char *client, uint64_t bytes,
		   uint64_t deadline_ms, uint64_t decision)
{
	uint64_t left = bytes;
	while (left) {
		struct member *best = NULL;
		uint64_t best_used = 0;
		for (size_t i = 0; i < a->nmembers; i++) {
			struct member *m = &a->members[i];
			if (!m->info.up)
				continue;
			for (size_t j = 0; j < m->nclients; j++) {
				int queued = 0;
				for (size_t k = 0; k < m->nqueue; k++)
					queued |= m->queue[k].decision_id == decision;
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
		if (a->members[i].info.up) {
			n += a->members[i].nclients;
			a->capacity += a->members[i].info.capacity;
			a->used += a->members[i].info.used;
		}
	struct total *t = realloc(a->totals, (n ? n : 1) * sizeof(*t));
	if (!t)
		return;
	a->totals = t;
	size_t k = 0;
	for (size_t i = 0; i < a->nmembers; i++) {
		const struct member *m = &a->members[i];
		for (size_t j = 0; m->info.up && j < m->nclients; j++) {
			const struct client_usage *s = &m->clients[j];
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
			struct cluster_event *e = event_add(a, "complied", d->client, NULL, d->asked);
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
		spread(a, PEER_ACTION_REVOKE, d->client, over, 0, d->id);
		struct cluster_event *e = event_add(a, "revoke", d->client, NULL, over);
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
		spread(a, PEER_ACTION_RECLAIM, c->name, v[i].bytes,
		       a->cfg.deadline_ms, d->id);
		struct cluster_event *e = event_add(a, "reclaim", c->name, NULL, v[i].bytes);
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
		if (m->info.up && !m->info.arbiter && now - m->last_ms > down_after_ms(a)) {
			m->info.up = 0;
			struct cluster_event *e = event_add(a, "server-down", NULL, m->info.url,
							    m->info.used);
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

static int usage_by_name(const void *x, const void *y)
{
	return strcmp(((const struct client_usage *)x)->name,
		      ((const struct client_usage *)y)->name);
}

static void take_report(struct arbiter *a, struct member *m, const struct peer_report *r,
			uint64_t now)
{
	const struct server_info *si = &r->server;
	snprintf(m->info.id, sizeof(m->info.id), "%s", si->id);
	m->info.capacity = si->capacity;
	m->info.used = si->used;
	m->info.arbiter = si->arbiter;
	m->last_ms = now;
	m->info.nnodes = si->nnodes < MEMBER_NODES ? si->nnodes : MEMBER_NODES;
	if (m->info.nnodes)
		memcpy(m->nodes, si->nodes, m->info.nnodes * sizeof(*m->nodes));
	if (!m->info.up) {
		m->info.up = 1;
		struct cluster_event *e = event_add(a, "server-up", NULL, m->info.url, si->capacity);
		snprintf(e->reason, sizeof(e->reason), "reporting: %llu bytes, %llu used",
			 (unsigned long long)si->capacity, (unsigned long long)si->used);
		event_log(e);
	}
	if (m->info.draining != !!si->draining) {
		m->info.draining = !!si->draining;
		struct cluster_event *e = event_add(a, si->draining ? "drain" : "undrain", NULL,
						    m->info.url, si->used);
		snprintf(e->reason, sizeof(e->reason), "%s",
			 si->draining ? "operator drains it: no new extents, clients move away"
				      : "operator undrained it");
		event_log(e);
	}
	struct client_usage *cs = malloc((r->nclients ? r->nclients : 1) * sizeof(*cs));
	if (!cs)
		return;
	if (r->nclients)
		memcpy(cs, r->clients, r->nclients * sizeof(*cs));
	qsort(cs, r->nclients, sizeof(*cs), usage_by_name);
	free(m->clients);
	m->clients = cs;
	m->nclients = r->nclients;
}

/* What name holds on the other servers that are up, from their latest
 * reports (not the last evaluation's sums, which may predate this one). */
static uint64_t used_elsewhere(const struct arbiter *a, const struct member *self,
			       const char *name)
{
	struct client_usage key;
	snprintf(key.name, sizeof(key.name), "%s", name);
	uint64_t sum = 0;
	for (size_t i = 0; i < a->nmembers; i++) {
		const struct member *m = &a->members[i];
		if (m == self || !m->info.up)
			continue;
		const struct client_usage *s = bsearch(&key, m->clients, m->nclients, sizeof(*s),
						       usage_by_name);
		if (s)
			sum += s->used;
	}
	return sum;
}

/* Every member as a server_info, with copies of its nodes: the reply is
 * converted after the lock is dropped. 0 or -ENOMEM. */
static int member_infos(struct arbiter *a, uint64_t now, struct server_info **servers,
			size_t *n, struct node_usage **node_store)
{
	*servers = malloc((a->nmembers ? a->nmembers : 1) * sizeof(**servers));
	*node_store = malloc((a->nmembers ? a->nmembers : 1) * MEMBER_NODES * sizeof(**node_store));
	*n = 0;
	if (!*servers || !*node_store)
		return -ENOMEM;
	for (size_t i = 0; i < a->nmembers; i++) {
		const struct member *m = &a->members[i];
		struct server_info *si = &(*servers)[i];
		struct node_usage *nodes = *node_store + i * MEMBER_NODES;
		*si = m->info;
		si->report_age_ms = now - m->last_ms;
		memcpy(nodes, m->nodes, m->info.nnodes * sizeof(*nodes));
		si->nodes = nodes;
	}
	*n = a->nmembers;
	return 0;
}

/* The clients of m that hold memory on another server that is up, with how
 * much: clients named nowhere else count 0 there (registry.h). */
static int budgets_of(struct arbiter *a, const struct member *m, struct arbiter_reply *reply)
{
	reply->budgets = malloc((m->nclients ? m->nclients : 1) * sizeof(*reply->budgets));
	if (!reply->budgets)
		return -ENOMEM;
	for (size_t i = 0; i < m->nclients; i++) {
		uint64_t elsewhere = used_elsewhere(a, m, m->clients[i].name);
		if (!elsewhere)
			continue;
		struct client_budget *b = &reply->budgets[reply->nbudgets++];
		snprintf(b->name, sizeof(b->name), "%s", m->clients[i].name);
		b->used_elsewhere = elsewhere;
	}
	return 0;
}

int arbiter_report(struct arbiter *a, const struct peer_report *report,
		   struct arbiter_reply *reply)
{
	memset(reply, 0, sizeof(*reply));
	uint64_t now = mono_ms();
	pthread_mutex_lock(&a->lock);
	struct member *m = member_find(a, report->server.url);
	if (!m && !(m = member_add(a, report->server.url))) {
		pthread_mutex_unlock(&a->lock);
		return -ENOMEM;
	}
	take_report(a, m, report, now);
	/* Summing 100 servers' clients per report would cost more than it
	 * tells: evaluate at most twice per report interval. */
	if (now - a->evaluated_ms >= a->cfg.interval_ms / 2 || !a->evaluated_ms)
		evaluate(a, now);
	int rc = member_infos(a, now, &reply->servers, &reply->nservers, &reply->node_store);
	struct arb_cluster cl = { .capacity = a->capacity, .high_pct = a->cfg.high_pct,
				  .low_pct = a->cfg.low_pct };
	reply->cluster_full = a->capacity && a->used >= arb_high_bytes(&cl);
	if (!rc)
		rc = budgets_of(a, m, reply);
	if (!rc) {
		reply->actions = m->queue;
		reply->nactions = m->nqueue;
		m->queue = NULL;
		m->nqueue = 0;
	}
	pthread_mutex_unlock(&a->lock);
	return rc;
}

void arbiter_reply_free(struct arbiter_reply *r)
{
	free(r->servers);
	free(r->node_store);
	free(r->budgets);
	free(r->actions);
	memset(r, 0, sizeof(*r));
}

/* --- status and events --------------------------------------------------------------- */

int arbiter_status(struct arbiter *a, const char *after_name, uint32_t max,
		   struct cluster_status *st)
{
	if (!max || max > ARBITER_STATUS_PAGE_MAX)
		max = ARBITER_STATUS_PAGE_MAX;
	memset(st, 0, sizeof(*st));
	uint64_t now = mono_ms();
	pthread_mutex_lock(&a->lock);
	evaluate(a, now);
	int rc = member_infos(a, now, &st->servers, &st->nservers, &st->node_store);
	st->capacity = a->capacity;
	st->used = a->used;
	st->high_pct = a->cfg.high_pct;
	st->low_pct = a->cfg.low_pct;
	st->decisions = a->decisions;
	st->clients = malloc(max * sizeof(*st->clients));
	size_t first = 0; /* totals are by name: the first after after_name */
	while (first < a->ntotals && strcmp(a->totals[first].c.name, after_name) <= 0)
		first++;
	for (size_t i = first; !rc && st->clients && i < a->ntotals; i++) {
		if (st->nclients == max) {
			snprintf(st->next_after, sizeof(st->next_after), "%s",
				 st->clients[max - 1].name);
			break;
		}
		const struct total *t = &a->totals[i];
		struct cluster_client *c = &st->clients[st->nclients++];
		*c = (struct cluster_client){ .priority = t->c.priority,
					      .reservation = t->c.reservation,
					      .limit = t->c.limit, .used = t->c.used,
					      .pending = t->c.pending,
					      .badness = arb_badness(&t->c, a->capacity),
					      .servers = t->servers };
		snprintf(c->name, sizeof(c->name), "%s", t->c.name);
	}
	pthread_mutex_unlock(&a->lock);
	return !rc && st->clients ? 0 : -ENOMEM;
}

void arbiter_status_free(struct cluster_status *st)
{
	free(st->servers);
	free(st->node_store);
	free(st->clients);
	memset(st, 0, sizeof(*st));
}

int arbiter_events(struct arbiter *a, uint64_t after_seq, uint32_t max,
		   struct cluster_events *ev)
{
	memset(ev, 0, sizeof(*ev));
	pthread_mutex_lock(&a->lock);
	uint64_t first = a->next_seq > EVENTS_KEPT ? a->next_seq - EVENTS_KEPT : 1;
	if (after_seq + 1 > first)
		first = after_seq + 1;
	uint64_t n = a->next_seq > first ? a->next_seq - first : 0;
	if (max && n > max)
		n = max;
	ev->last_seq = a->next_seq - 1;
	ev->events = malloc((n ? n : 1) * sizeof(*ev->events));
	for (uint64_t s = first; ev->events && s < first + n; s++) {
		ev->events[ev->nevents++] = a->ring[s % EVENTS_KEPT];
		ev->last_seq = s;
	}
	pthread_mutex_unlock(&a->lock);
	return ev->events ? 0 : -ENOMEM;
}

void arbiter_events_free(struct cluster_events *ev)
{
	free(ev->events);
	memset(ev, 0, sizeof(*ev));
}
