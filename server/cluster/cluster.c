/* SPDX-License-Identifier: MIT */
#include "cluster.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctrl.h"
#include "log.h"
#include "notify.h"
#include "reclaim.h"
#include "registry.h"
#include "server.h"
#include "url.h"

#define URL_TEXT OPT_TEXT

/* Another server, as --peer named it or the arbiter last described it. */
struct known {
	char url[URL_TEXT];
	char id[64];
	uint64_t capacity, used, age_ms;
	int draining, up, arbiter;
};

struct cluster {
	pthread_mutex_t lock;
	char advertised[URL_TEXT];
	struct known *peers; /* --peer, fixed */
	size_t npeers;
	struct known *learned; /* from the arbiter's last reply */
	size_t nlearned;
	int draining;
};

static struct cluster *C(const struct server *s)
{
	return s->cluster;
}

/* --advertise, else the first tcp:// listener with its bound port. */
static void advertise(struct server *s, char *out, size_t cap)
{
	if (s->opt.advertise[0]) {
		snprintf(out, cap, "%s", s->opt.advertise);
		return;
	}
	for (int i = 0; i < s->opt.nlisten; i++) {
		struct url u;
		if (url_parse(s->opt.listen[i], URL_DEFAULT_PORT, &u) || strcmp(u.scheme, "tcp"))
			continue;
		u.port = s->tcp_port;
		url_format(&u, out, (int)cap);
		if (!strcmp(u.host, "0.0.0.0") || !strcmp(u.host, "::"))
			log_warn("advertising %s to the cluster: give --advertise URL with an address "
				 "clients can reach", out);
		return;
	}
	snprintf(out, cap, "rdma://unknown:%d", s->rdma_port);
}

int cluster_init(struct server *s)
{
	struct cluster *c = calloc(1, sizeof(*c));
	if (!c || !(c->peers = calloc((size_t)s->opt.npeers + 1, sizeof(*c->peers)))) {
		free(c);
		return -ENOMEM;
	}
	pthread_mutex_init(&c->lock, NULL);
	advertise(s, c->advertised, sizeof(c->advertised));
	for (int i = 0; i < s->opt.npeers; i++) {
		struct known *k = &c->peers[c->npeers++];
		snprintf(k->url, sizeof(k->url), "%s", s->opt.peers[i]);
		k->up = 1; /* as far as we know: nobody has said otherwise */
	}
	s->cluster = c;
	return 0;
}

void cluster_destroy(struct server *s)
{
	struct cluster *c = C(s);
	if (!c)
		return;
	pthread_mutex_destroy(&c->lock);
	free(c->peers);
	free(c->learned);
	free(c);
	s->cluster = NULL;
}

const char *cluster_advertised(const struct server *s)
{
	return C(s)->advertised;
}

void cluster_self_info(struct server *s, Spillway__ServerInfo *si, Spillway__NodeStats *store,
		       Spillway__NodeStats **ptrs)
{
	spillway__server_info__init(si);
	si->url = C(s)->advertised;
	si->server_id = s->server_id;
	si->capacity_bytes = s->pools->capacity;
	uint64_t reserved;
	unsigned nclients;
	registry_totals(s->reg, &si->used_bytes, &reserved, &nclients);
	si->draining = cluster_draining(s);
	si->up = 1;
	si->arbiter = s->opt.arbiter;
	si->n_nodes = cluster_node_stats(s, store, ptrs);
	si->nodes = ptrs;
}

size_t cluster_node_stats(struct server *s, Spillway__NodeStats *store,
			  Spillway__NodeStats **ptrs)
{
	for (int i = 0; i < s->pools->npools; i++) {
		spillway__node_stats__init(&store[i]);
		store[i].node = (uint32_t)s->pools->pools[i].node;
		store[i].capacity_bytes = s->pools->pools[i].bytes;
		store[i].used_bytes = atomic_load(&s->pools->pools[i].used);
		ptrs[i] = &store[i];
	}
	return (size_t)s->pools->npools;
}

/* A copy of k as a ServerInfo (strings duplicated). */
static Spillway__ServerInfo *info_of(const struct known *k)
{
	Spillway__ServerInfo *si = malloc(sizeof(*si));
	if (!si)
		return NULL;
	spillway__server_info__init(si);
	si->url = strdup(k->url);
	si->server_id = strdup(k->id);
	if (!si->url || !si->server_id) {
		free(si->url);
		free(si->server_id);
		free(si);
		return NULL;
	}
	si->capacity_bytes = k->capacity;
	si->used_bytes = k->used;
	si->report_age_ms = k->age_ms;
	si->draining = k->draining;
	si->up = k->up;
	si->arbiter = k->arbiter;
	return si;
}

static int listed(Spillway__ServerInfo **v, size_t n, const char *url)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(v[i]->url, url))
			return 1;
	return 0;
}

int cluster_info(struct server *s, Spillway__ClusterInfoReply *r)
{
	struct cluster *c = C(s);
	spillway__cluster_info_reply__init(r);
	int npools = s->pools->npools;
	Spillway__NodeStats store[npools], *ptrs[npools];
	Spillway__ServerInfo self;
	cluster_self_info(s, &self, store, ptrs);
	self.nodes = NULL; /* membership, not a status report */
	self.n_nodes = 0;
	struct known me = { .capacity = self.capacity_bytes, .used = self.used_bytes,
			    .draining = self.draining, .up = 1, .arbiter = self.arbiter };
	snprintf(me.url, sizeof(me.url), "%s", self.url);
	snprintf(me.id, sizeof(me.id), "%s", self.server_id);

	pthread_mutex_lock(&c->lock);
	size_t cap = 1 + c->nlearned + c->npeers;
	r->servers = calloc(cap, sizeof(*r->servers));
	int rc = r->servers ? 0 : -ENOMEM;
	if (!rc && (r->servers[0] = info_of(&me)))
		r->n_servers = 1;
	/* What the arbiter said wins over --peer, which only gives URLs. */
	for (size_t i = 0; !rc && i < c->nlearned; i++)
		if (!listed(r->servers, r->n_servers, c->learned[i].url) &&
		    (r->servers[r->n_servers] = info_of(&c->learned[i])))
			r->n_servers++;
	for (size_t i = 0; !rc && i < c->npeers; i++)
		if (!listed(r->servers, r->n_servers, c->peers[i].url) &&
		    (r->servers[r->n_servers] = info_of(&c->peers[i])))
			r->n_servers++;
	pthread_mutex_unlock(&c->lock);
	r->arbiter_url = strdup(s->opt.arbiter ? c->advertised : s->opt.arbiter_url);
	int draining;
	registry_cluster_state(s->reg, &r->cluster_full, &draining);
	if (!rc && !r->arbiter_url)
		rc = -ENOMEM;
	if (rc)
		cluster_info_free(r);
	return rc;
}

void cluster_info_free(Spillway__ClusterInfoReply *r)
{
	for (size_t i = 0; i < r->n_servers; i++) {
		free(r->servers[i]->url);
		free(r->servers[i]->server_id);
		free(r->servers[i]);
	}
	free(r->servers);
	free(r->arbiter_url);
	r->servers = NULL;
	r->arbiter_url = NULL;
	r->n_servers = 0;
}

/* --- drain ------------------------------------------------------------------ */

int cluster_set_draining(struct server *s, int on)
{
	struct cluster *c = C(s);
	pthread_mutex_lock(&c->lock);
	c->draining = on;
	pthread_mutex_unlock(&c->lock);
	int full, draining;
	registry_cluster_state(s->reg, &full, &draining);
	registry_set_cluster_state(s->reg, full, on);
	size_t n = 0;
	int told = 0;
	struct reg_client_stats *all = registry_all_client_stats(s->reg, &n);
	for (size_t i = 0; i < n; i++)
		if (notify_drain(s, all[i].name, on) == 0)
			told++;
	free(all);
	log_info("%s: %s (%d connected clients told)", c->advertised,
		 on ? "draining: no new extents, clients move their pages elsewhere" : "undrained",
		 told);
	return told;
}

int cluster_draining(struct server *s)
{
	struct cluster *c = C(s);
	pthread_mutex_lock(&c->lock);
	int on = c->draining;
	pthread_mutex_unlock(&c->lock);
	return on;
}

void cluster_client_registered(struct server *s, const char *name)
{
	if (cluster_draining(s))
		notify_drain(s, name, 1);
}

/* --- the arbiter's replies ---------------------------------------------------- */

static void apply_action(struct server *s, const Spillway__PeerAction *a)
{
	if (a->kind == SPILLWAY__PEER_ACTION__KIND__RECLAIM) {
		uint64_t id;
		int rc = reclaim_send(s, a->client, a->bytes, a->deadline_ms, &id);
		if (rc)
			log_warn("arbiter decision %llu: cannot ask '%s' for %llu bytes: %s",
				 (unsigned long long)a->decision_id, a->client,
				 (unsigned long long)a->bytes, strerror(-rc));
		else
			log_info("arbiter decision %llu: asked '%s' for %llu bytes within %llu ms "
				 "(reclaim %llu)", (unsigned long long)a->decision_id, a->client,
				 (unsigned long long)a->bytes, (unsigned long long)a->deadline_ms,
				 (unsigned long long)id);
		return;
	}
	uint64_t freed = registry_revoke(s->reg, a->client, a->bytes);
	log_warn("arbiter decision %llu: revoked %llu bytes of '%s' (it ignored a reclaim)",
		 (unsigned long long)a->decision_id, (unsigned long long)freed, a->client);
}

void cluster_apply(struct server *s, const Spillway__PeerReportReply *r)
{
	struct cluster *c = C(s);
	struct known *learned = calloc(r->n_servers ? r->n_servers : 1, sizeof(*learned));
	size_t n = 0;
	for (size_t i = 0; learned && i < r->n_servers; i++) {
		const Spillway__ServerInfo *si = r->servers[i];
		if (!strcmp(si->url, c->advertised))
			continue;
		struct known *k = &learned[n++];
		snprintf(k->url, sizeof(k->url), "%s", si->url);
		snprintf(k->id, sizeof(k->id), "%s", si->server_id);
		k->capacity = si->capacity_bytes;
		k->used = si->used_bytes;
		k->age_ms = si->report_age_ms;
		k->draining = si->draining;
		k->up = si->up;
		k->arbiter = si->arbiter;
	}
	pthread_mutex_lock(&c->lock);
	if (learned) {
		free(c->learned);
		c->learned = learned;
		c->nlearned = n;
	}
	int draining = c->draining;
	pthread_mutex_unlock(&c->lock);
	registry_set_cluster_state(s->reg, r->cluster_full, draining);

	const char *names[r->n_budgets ? r->n_budgets : 1];
	uint64_t bytes[r->n_budgets ? r->n_budgets : 1];
	for (size_t i = 0; i < r->n_budgets; i++) {
		names[i] = r->budgets[i]->name;
		bytes[i] = r->budgets[i]->used_elsewhere;
	}
	registry_set_used_elsewhere(s->reg, names, bytes, r->n_budgets);
	for (size_t i = 0; i < r->n_actions; i++)
		apply_action(s, r->actions[i]);
}

void cluster_arbiter_lost(struct server *s)
{
	registry_set_cluster_state(s->reg, 0, cluster_draining(s));
	registry_set_used_elsewhere(s->reg, NULL, NULL, 0);
}
