/* SPDX-License-Identifier: MIT */
/*
 * spillwayd: start-up, listeners, signals and shutdown. The main thread owns
 * the listening sockets and hands each accepted connection to a worker.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/listener.h>
#include <event2/thread.h>
#include <urcu.h>

#include "admission.h"
#include "conn.h"
#include "cluster.h"
#include "http.h"
#include "listen_unix.h"
#include "listen_tcp.h"
#include "nbd.h"
#include "nbd_export.h"
#include "peer_report.h"
#include "rdma_listen.h"
#include "numa_place.h"
#include "slab.h"
#include "log.h"
#include "server.h"
#include "stats.h"
#include "url.h"
#include "worker.h"

/* Does host name only loopback addresses? */
static int is_loopback(const char *host)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res;
	if (getaddrinfo(host, NULL, &hints, &res))
		return 0;
	int all = 1;
	for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
		if (ai->ai_family == AF_INET) {
			uint32_t a = ntohl(((struct sockaddr_in *)ai->ai_addr)->sin_addr.s_addr);
			all &= (a >> 24) == 127;
		} else if (ai->ai_family == AF_INET6) {
			all &= IN6_IS_ADDR_LOOPBACK(&((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr);
		} else {
			all = 0;
		}
	}
	freeaddrinfo(res);
	return all;
}

static int listen_on(struct server *s, const char *text)
{
	struct url u;
	if (url_parse(text, URL_DEFAULT_PORT, &u) || !strcmp(u.scheme, "unix")) {
		log_error("--listen %s: expected tcp://HOST:PORT or rdma://HOST:PORT", text);
		return -EINVAL;
	}
	if (!s->have_psk && !s->opt.insecure && !is_loopback(u.host)) {
		log_error("refusing to listen on %s without --psk-file (add --insecure to allow it)",
			  text);
		return -EPERM;
	}
	if (!strcmp(u.scheme, "rdma"))
		return rdma_listener_start(s, &u, text);
	return listen_tcp_start(s, &u, text);
}

static void on_stop(evutil_socket_t sig, short what, void *arg)
{
	(void)what;
	struct server *s = arg;
	log_info("%s: no new connections; finishing requests in flight",
		 sig == SIGTERM ? "SIGTERM" : "SIGINT");
	listen_tcp_pause(s);
	rdma_listeners_pause();
	event_base_loopbreak(s->base);
}

static int reload_quotas(struct server *s)
{
	char **names;
	struct reg_quota *q;
	size_t n;
	char err[512];
	if (!s->opt.config[0])
		return 0;
	int rc = options_load_quotas(s->opt.config, &names, &q, &n, err, sizeof(err));
	if (rc) {
		log_error("quotas not loaded, the previous ones stay: %s", err);
		return rc;
	}
	rc = registry_load_quotas(s->reg, names, q, n);
	options_free_quotas(names, q, n);
	if (rc == 0)
		log_info("loaded %zu client quotas from %s", n, s->opt.config);
	return rc;
}

static void on_hup(evutil_socket_t sig, short what, void *arg)
{
	(void)sig;
	(void)what;
	reload_quotas(arg);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct server *s = arg;
	registry_expire(s->reg, registry_now_ms());
}

static uint64_t gauge_pool_bytes(void *arg) { return ((struct pool *)arg)->bytes; }
static uint64_t gauge_pool_used(void *arg) { return atomic_load(&((struct pool *)arg)->used); }
static uint64_t gauge_clients(void *arg)
{
	uint64_t used, reserved;
	unsigned n;
	registry_totals(((struct server *)arg)->reg, &used, &reserved, &n);
	return n;
}
static uint64_t gauge_reserved(void *arg)
{
	uint64_t used, reserved;
	unsigned n;
	registry_totals(((struct server *)arg)->reg, &used, &reserved, &n);
	return reserved;
}

static int register_metrics(struct server *s)
{
	char labels[32];
	int rc = stats_register(s->metrics);
	for (int i = 0; i < s->pools->npools; i++) {
		snprintf(labels, sizeof(labels), "node=\"%d\"", s->pools->pools[i].node);
		rc |= metrics_add_gauge(s->metrics, "spillway_pool_bytes", labels,
					"Pool capacity, by NUMA node", gauge_pool_bytes,
					&s->pools->pools[i]);
	}
	for (int i = 0; i < s->pools->npools; i++) {
		snprintf(labels, sizeof(labels), "node=\"%d\"", s->pools->pools[i].node);
		rc |= metrics_add_gauge(s->metrics, "spillway_pool_used_bytes", labels,
					"Pool bytes lent to clients, by NUMA node", gauge_pool_used,
					&s->pools->pools[i]);
	}
	rc |= metrics_add_gauge(s->metrics, "spillway_clients", "",
				"Client identities, connected or in their grace period",
				gauge_clients, s);
	rc |= metrics_add_gauge(s->metrics, "spillway_reserved_bytes", "",
				"Sum of client reservations", gauge_reserved, s);
	rc |= registry_metrics_register(s->reg, s->metrics);
	rc |= admission_register_metrics(s->metrics);
	rc |= http_register_metrics(s->metrics);
	return rc ? -ENOMEM : 0;
}

static int nbd_port; /* 0: no NBD listener */

/* [export NAME] sections of --config: created once, at start-up. */
static int create_exports(struct server *s)
{
	struct opt_export *v;
	size_t n;
	char err[512];
	if (!s->opt.config[0])
		return 0;
	if (options_load_exports(s->opt.config, &v, &n, err, sizeof(err))) {
		log_error("%s", err);
		return -EINVAL;
	}
	int rc = 0;
	if (n && !s->opt.nbd[0]) {
		log_error("%s: [export] sections need --nbd HOST:PORT", s->opt.config);
		rc = -EINVAL;
	}
	for (size_t i = 0; !rc && i < n; i++) {
		const char *why = NULL;
		rc = nbd_export_create(v[i].name, v[i].size, v[i].client, &why);
		if (rc)
			log_error("%s: export '%s': %s", s->opt.config, v[i].name,
				  why ? why : strerror(-rc));
	}
	free(v);
	return rc;
}

static int start(struct server *s, int *metrics_port)
{
	char err[512];
	int rc;
	if (s->opt.psk_file[0]) {
		rc = auth_psk_load(s->opt.psk_file, &s->psk);
		if (rc) {
			log_error("--psk-file %s: %s", s->opt.psk_file, auth_psk_strerror(rc));
			return rc;
		}
		s->have_psk = 1;
	}
	if (s->opt.admin_psk_file[0]) {
		rc = auth_psk_load(s->opt.admin_psk_file, &s->admin_psk);
		if (rc) {
			log_error("--admin-psk-file %s: %s", s->opt.admin_psk_file, auth_psk_strerror(rc));
			return rc;
		}
		if (s->admin_psk.len == s->psk.len &&
		    !memcmp(s->admin_psk.key, s->psk.key, s->psk.len)) {
			log_error("--admin-psk-file must differ from --psk-file");
			return -EINVAL;
		}
		s->have_admin_psk = 1;
	}
	if ((rc = admission_init(&s->opt)))
		return rc;
	/* Bind first: a busy port should fail in a moment, not after a large
	 * pool has been pre-faulted. Nothing is accepted before the loop runs. */
	for (int i = 0; i < s->opt.nlisten; i++)
		if ((rc = listen_on(s, s->opt.listen[i])))
			return rc;
	if (s->opt.nbd[0] &&
	    (rc = nbd_listen(s, s->opt.nbd, s->opt.nbd_insecure, &nbd_port)))
		return rc;
	struct pool_options po = {
		.capacity = s->opt.capacity, .nodes = s->opt.numa_nodes,
		.unit = s->opt.extent_size, .mlock = s->opt.mlock, .hugetlb = s->opt.hugetlb,
	};
	rc = pool_set_create(&po, &s->pools, err, sizeof(err));
	if (rc) {
		log_error("pool: %s", err);
		return rc;
	}
	for (int i = 0; i < s->pools->npools; i++)
		log_info("pool on node %d: %llu MiB%s%s", s->pools->pools[i].node,
			 (unsigned long long)(s->pools->pools[i].bytes >> 20),
			 s->pools->pools[i].on_hugetlb ? ", huge pages" : "",
			 s->opt.mlock ? ", locked" : "");
	s->reg = registry_create(s->pools, s->opt.extent_size, s->opt.grace_s * 1000);
	s->metrics = metrics_create();
	s->conn_cache = slab_cache_create("conn", sizeof(struct conn), 64);
	if (!s->reg || !s->metrics || !s->conn_cache || register_metrics(s))
		return -ENOMEM;
	registry_set_policy(s->reg, &s->opt.policy);
	if ((rc = reload_quotas(s))) {
		log_error("%s: client quotas cannot be applied (see above)", s->opt.config);
		return rc;
	}
	if ((rc = create_exports(s)))
		return rc;
	if ((rc = listen_unix_start(s)))
		return rc;
	if ((rc = cluster_init(s)))
		return rc;
	int nworkers = s->opt.workers > 0 ? s->opt.workers : (int)sysconf(_SC_NPROCESSORS_ONLN);
	if ((rc = workers_start(s, nworkers > 0 ? nworkers : 1))) {
		log_error("cannot start workers: %s", strerror(-rc));
		return rc;
	}
	if ((rc = nbd_start())) {
		log_error("cannot start the NBD listener: %s", strerror(-rc));
		return rc;
	}
	if (strcmp(s->opt.metrics, "none")) {
		rc = http_start(s, s->opt.metrics, &s->http, metrics_port);
		if (rc)
			return rc;
		log_info("metrics on port %d: GET /metrics", *metrics_port);
	}
	if ((rc = peer_report_start(s))) {
		log_error("cannot start reporting to the arbiter: %s", strerror(-rc));
		return rc;
	}
	return 0;
}

static void announce_ready(struct server *s, int metrics_port)
{
	if (s->opt.ready_fd < 0)
		return;
	char extra[64] = "";
	int n = 0;
	if (nbd_port)
		n += snprintf(extra + n, sizeof(extra) - (size_t)n, " nbd=%d", nbd_port);
	if (s->rdma_port)
		snprintf(extra + n, sizeof(extra) - (size_t)n, " rdma=%d", s->rdma_port);
	dprintf(s->opt.ready_fd, "tcp=%d metrics=%d%s\n", s->tcp_port, metrics_port, extra);
	close(s->opt.ready_fd);
}

int main(int argc, char **argv)
{
	static struct server s;
	char err[512];
	log_set_ident("spillwayd");
	int rc = options_parse(argc, argv, &s.opt, err, sizeof(err));
	if (rc > 0)
		return 0;
	if (rc < 0) {
		fprintf(stderr, "spillwayd: %s\n", err);
		return 2;
	}
	log_set_level_name(s.opt.log_level);
	signal(SIGPIPE, SIG_IGN);
	evthread_use_pthreads();
	rcu_register_thread();
	s.start_ms = registry_now_ms();
	char host[48] = "spillwayd";
	gethostname(host, sizeof(host) - 1);
	snprintf(s.server_id, sizeof(s.server_id), "%s:%d", host, (int)getpid());
	s.base = event_base_new();
	if (!s.base)
		return 1;

	int metrics_port = 0, status = 0;
	struct event *sigterm = evsignal_new(s.base, SIGTERM, on_stop, &s);
	struct event *sigint = evsignal_new(s.base, SIGINT, on_stop, &s);
	struct event *sighup = evsignal_new(s.base, SIGHUP, on_hup, &s);
	struct event *tick = event_new(s.base, -1, EV_PERSIST, on_tick, &s);
	struct timeval second = { 1, 0 };
	/* libevent restores the disposition it found when the event is freed:
	 * make that "ignore", so a repeated SIGTERM cannot cut a drain short. */
	signal(SIGTERM, SIG_IGN);
	evsignal_add(sigterm, NULL);
	evsignal_add(sigint, NULL);
	evsignal_add(sighup, NULL);
	evtimer_add(tick, &second);

	if (start(&s, &metrics_port)) {
		status = 1;
	} else {
		log_info("serving %llu MiB on %d node(s), %d workers, extents of %llu KiB%s",
			 (unsigned long long)(s.pools->capacity >> 20), s.pools->npools,
			 s.nworkers, (unsigned long long)(s.opt.extent_size >> 10),
			 s.have_psk ? ", PSK required" : "");
		announce_ready(&s, metrics_port);
		event_base_dispatch(s.base);
	}

	listen_unix_stop();
	listen_tcp_stop(&s);
	nbd_stop(); /* before the registry goes: exports hold extents */
	if (s.workers)
		workers_stop(&s);
	peer_report_stop(&s); /* after the workers: their frees poke it */
	cluster_destroy(&s);
	rdma_listeners_stop(); /* after the workers: their QPs came from these ids' devices */
	http_stop(s.http);
	event_free(sigterm);
	event_free(sigint);
	event_free(sighup);
	event_free(tick);
	event_base_free(s.base);
	registry_destroy(s.reg);
	slab_cache_destroy(s.conn_cache);
	metrics_destroy(s.metrics);
	pool_set_destroy(s.pools);
	admission_destroy();
	rcu_unregister_thread();
	if (!status)
		log_info("stopped");
	return status;
}
