/* SPDX-License-Identifier: MIT */
#include "cluster.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "notify.h"
#include "reclaim.h"
#include "registry.h"
#include "server.h"
#include "url.h"
#include "wire_cluster.h"

/* Other servers (no nodes): as --peer named them, or as the arbiter last
 * described them. */
struct cluster {
	pthread_mutex_t lock;
	char advertised[CLUSTER_URL_MAX];
	struct server_info *peers; /* --peer, fixed */
	size_t npeers;
	struct server_info *learned; /* from the arbiter's last reply */
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
		struct server_info *k = &c->peers[c->npeers++];
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

void cluster_self_info(struct server *s, struct server_info *si, struct node_usage *store)
{
	memset(si, 0, sizeof(*si));
	snprintf(si->url, sizeof(si->url), "%s", C(s)->advertised);
	snprintf(si->id, sizeof(si->id), "%s", s->server_id);
	si->capacity = s->pools->capacity;
	uint64_t reserved;
	unsigned nclients;
	registry_totals(s->reg, &si->used, &reserved, &nclients);
	si->draining = cluster_draining(s);
	si->up = 1;
	si->arbiter = s->opt.arbiter;
	si->nnodes = cluster_node_usage(s, store);
	si->nodes = store;
}

size_t cluster_node_usage(struct server *s, struct node_usage *store)
{
	for (int i = 0; i < s->pools->npools; i++)
		store[i] = (struct node_usage){ .node = (uint32_t)s->pools->pools[i].node,
						.capacity = s->pools->pools[i].bytes,
						.used = atomic_load(&s->pools->pools[i].used) };
	return (size_t)s->pools->npools;
}

static int listed(const struct server_info *v, size_t n, const char *url)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(v[i].url, url))
			return 1;
	return 0;
}

int cluster_info(struct server *s, struct cluster_members *r)
{
	struct cluster *c = C(s);
	memset(r, 0, sizeof(*r));
	struct node_usage store[s->pools->npools];
	struct server_info me;
	cluster_self_info(s, &me, store);
	me.nodes = NULL; /* membership, not a status report */
	me.nnodes = 0;

	pthread_mutex_lock(&c->lock);
	r->servers = malloc((1 + c->nlearned + c->npeers) * sizeof(*r->servers));
	if (r->servers) {
		r->servers[r->nservers++] = me;
		/* What the arbiter said wins over --peer, which only gives URLs. */
		for (size_t i = 0; i < c->nlearned; i++)
			if (!listed(r->servers, r->nservers, c->learned[i].url))
				r->servers[r->nservers++] = c->learned[i];
		for (size_t i = 0; i < c->npeers; i++)
			if (!listed(r->servers, r->nservers, c->peers[i].url))
				r->servers[r->nservers++] = c->peers[i];
	}
	pthread_mutex_unlock(&c->lock);
	snprintf(r->arbiter_url, sizeof(r->arbiter_url), "%s",
		 s->opt.arbiter ? c->advertised : s->opt.arbiter_url);
	int draining;
	registry_cluster_state(s->reg, &r->cluster_full, &draining);
	return r->servers ? 0 : -ENOMEM;
}

void cluster_info_free(struct cluster_members *r)
{
	free(r->servers);
	r->servers = NULL;
	r->nservers = 0;
}

struct client_usage *cluster_client_usage(struct server *s, size_t *n)
{
	size_t k = 0;
	struct reg_client_stats *all = registry_all_client_stats(s->reg, &k);
	struct client_usage *v = all ? malloc((k ? k : 1) * sizeof(*v)) : NULL;
	for (size_t i = 0; v && i < k; i++) {
		v[i] = (struct client_usage){ .priority = all[i].priority,
					      .reservation = all[i].reservation,
					      .limit = all[i].limit,
					      .used = all[i].used,
					      .connections = all[i].connections };
		snprintf(v[i].name, sizeof(v[i].name), "%s", all[i].name);
	}
	free(all);
	*n = v ? k : 0;
	return v;
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
	struct client_usage *all = cluster_client_usage(s, &n);
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

static void apply_action(struct server *s, const struct peer_action *a)
{
	if (a->kind == PEER_ACTION_RECLAIM) {
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

void cluster_apply(struct server *s, const struct arbiter_reply *r)
{
	struct cluster *c = C(s);
	struct server_info *learned = malloc((r->nservers ? r->nservers : 1) * sizeof(*learned));
	size_t n = 0;
	for (size_t i = 0; learned && i < r->nservers; i++) {
		if (strcmp(r->servers[i].url, c->advertised)) {
			learned[n] = r->servers[i];
			learned[n].nodes = NULL; /* membership only */
			learned[n++].nnodes = 0;
		}
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

	const char *names[r->nbudgets ? r->nbudgets : 1];
	uint64_t bytes[r->nbudgets ? r->nbudgets : 1];
	for (size_t i = 0; i < r->nbudgets; i++) {
		names[i] = r->budgets[i].name;
		bytes[i] = r->budgets[i].used_elsewhere;
	}
	registry_set_used_elsewhere(s->reg, names, bytes, r->nbudgets);
	for (size_t i = 0; i < r->nactions; i++)
		apply_action(s, &r->actions[i]);
}

void cluster_arbiter_lost(struct server *s)
{
	registry_set_cluster_state(s->reg, 0, cluster_draining(s));
	registry_set_used_elsewhere(s->reg, NULL, NULL, 0);
}
