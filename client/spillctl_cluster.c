/* SPDX-License-Identifier: MIT */
/*
 * spillctl's cluster commands: find the arbiter through --server, ask it,
 * fan client set out to every server, follow events, drain a server.
 */
#include "spillctl_cluster.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config.h"

#define POLL_MS 500

/* --server and what it knows of its cluster. */
struct cluster {
	struct client *server;  /* session with --server */
	Spillway__Ctrl *info;   /* its ClusterInfoReply; NULL if it answers none */
	struct client *arbiter; /* session with the arbiter (may be server); NULL until needed */
};

static const Spillway__ClusterInfoReply *cluster_info(const struct cluster *cl)
{
	return cl->info ? cl->info->cluster_info_reply : NULL;
}

static const char *arbiter_url(const struct cluster *cl)
{
	return cluster_info(cl) ? cluster_info(cl)->arbiter_url : "";
}

/* Connect to --server and ask for ClusterInfo; a server that does not
 * answer it (older, or an error) counts as one without a cluster. */
static int cluster_open(const struct ctl *ctl, struct cluster *cl)
{
	*cl = (struct cluster){ 0 };
	if (ctl_connect(ctl, ctl->server, &cl->server))
		return 1;
	Spillway__ClusterInfo ci = SPILLWAY__CLUSTER_INFO__INIT;
	Spillway__Ctrl req = SPILLWAY__CTRL__INIT;
	req.msg_case = SPILLWAY__CTRL__MSG_CLUSTER_INFO;
	req.cluster_info = &ci;
	char err[256];
	if (ctl_call(cl->server, &req, SPILLWAY__CTRL__MSG_CLUSTER_INFO_REPLY, &cl->info, err,
		     sizeof(err)))
		cl->info = NULL;
	if (client_dead(cl->server)) {
		fprintf(stderr, "spillctl: %s: %s\n", ctl->server, err);
		return 1;
	}
	return 0;
}

static void cluster_close(struct cluster *cl)
{
	if (cl->arbiter && cl->arbiter != cl->server)
		client_close(cl->arbiter);
	if (cl->server)
		client_close(cl->server);
	if (cl->info)
		ctrl_free(cl->info);
}

/*
 * req at the arbiter: on --server itself if it is the arbiter (it answers),
 * else on a session with arbiter_url. Needs an arbiter_url. 0 with *rep, or
 * 1 with the reason on stderr.
 */
static int cluster_ask_arbiter(const struct ctl *ctl, struct cluster *cl, Spillway__Ctrl *req,
			       Spillway__Ctrl__MsgCase want, Spillway__Ctrl **rep)
{
	char err[256];
	int rc = -ENOTSUP;
	if (!cl->arbiter || cl->arbiter == cl->server) {
		rc = ctl_call(cl->server, req, want, rep, err, sizeof(err));
		if (!rc)
			cl->arbiter = cl->server;
	}
	if (rc == -ENOTSUP && cl->arbiter != cl->server) {
		if (!cl->arbiter && ctl_connect(ctl, arbiter_url(cl), &cl->arbiter))
			return 1;
		rc = ctl_call(cl->arbiter, req, want, rep, err, sizeof(err));
	}
	if (rc) {
		fprintf(stderr, "spillctl: arbiter %s: %s\n", escape_text(arbiter_url(cl)), err);
		return 1;
	}
	return 0;
}

struct status_pages {
	const struct ctl *ctl;
	struct cluster *cl;
};

static int status_ask(void *arg, const char *after, Spillway__Ctrl **page)
{
	struct status_pages *sp = arg;
	Spillway__AdminClusterStatus a = SPILLWAY__ADMIN_CLUSTER_STATUS__INIT;
	Spillway__Ctrl req = SPILLWAY__CTRL__INIT;
	req.msg_case = SPILLWAY__CTRL__MSG_ADMIN_CLUSTER_STATUS;
	req.admin_cluster_status = &a;
	a.after_name = (char *)after;
	return cluster_ask_arbiter(sp->ctl, sp->cl, &req,
				   SPILLWAY__CTRL__MSG_ADMIN_CLUSTER_STATUS_REPLY, page);
}

static const char *status_next(const Spillway__Ctrl *page)
{
	return page->admin_cluster_status_reply->next_after;
}

static int status_merge(Spillway__Ctrl *all, Spillway__Ctrl *page)
{
	Spillway__AdminClusterStatusReply *a = all->admin_cluster_status_reply;
	Spillway__AdminClusterStatusReply *p = page->admin_cluster_status_reply;
	return ctl_append_ptrs(&a->clients, &a->n_clients, p->clients, &p->n_clients);
}

/* The arbiter's status with every client, asked for page by page (an
 * arbiter that does not page sends them all at once, with no next_after). */
static int ask_cluster_status(const struct ctl *ctl, struct cluster *cl, Spillway__Ctrl **rep)
{
	struct status_pages sp = { ctl, cl };
	const struct ctl_pages p = { status_ask, status_next, status_merge, &sp };
	return ctl_all_pages(&p, rep);
}

int cluster_status_cmd(const struct ctl *ctl, int argc, char **argv)
{
	if (ctl_positional(argc, argv, 0, "cluster status"))
		return EXIT_USAGE;
	struct cluster cl;
	int rc = cluster_open(ctl, &cl);
	if (!rc && !cluster_info(&cl)) {
		fprintf(stderr, "spillctl: %s does not answer ClusterInfo (older spillwayd?)\n",
			ctl->server);
		rc = 1;
	} else if (!rc && !arbiter_url(&cl)[0]) {
		cluster_print_info(stdout, cluster_info(&cl), ctl->json);
	} else if (!rc) {
		Spillway__Ctrl *rep;
		rc = ask_cluster_status(ctl, &cl, &rep);
		if (!rc) {
			cluster_print_status(stdout, rep->admin_cluster_status_reply, arbiter_url(&cl),
					     ctl->json);
			ctrl_free(rep);
		}
	}
	cluster_close(&cl);
	return rc;
}

int cluster_clients_cmd(const struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "local", no_argument, NULL, 'l' },
		{ NULL, 0, NULL, 0 },
	};
	int opt, local = 0;
	optind = 0; /* see ctl_getopt */
	while ((opt = ctl_getopt(argc, argv, opts, "clients")) != -1) {
		if (opt != 'l')
			return EXIT_USAGE;
		local = 1;
	}
	if (optind != argc)
		return ctl_usage_error("clients: unexpected argument '%s'", argv[optind]);
	struct cluster cl;
	int rc;
	Spillway__Ctrl *rep;
	if (local) {
		cl = (struct cluster){ 0 };
		rc = ctl_connect(ctl, ctl->server, &cl.server);
	} else {
		rc = cluster_open(ctl, &cl);
	}
	if (!rc && arbiter_url(&cl)[0]) {
		rc = ask_cluster_status(ctl, &cl, &rep);
		if (!rc) {
			const Spillway__AdminClusterStatusReply *r = rep->admin_cluster_status_reply;
			cluster_print_clients(stdout, r->clients, r->n_clients, ctl->json);
			ctrl_free(rep);
		}
	} else if (!rc) {
		rc = ctl_admin_status(cl.server, &rep);
		if (!rc) {
			const Spillway__AdminStatusReply *r = rep->admin_status_reply;
			print_clients(stdout, r->clients, r->n_clients, ctl->json);
			ctrl_free(rep);
		}
	}
	cluster_close(&cl);
	return rc;
}

/* AdminClientSet on c; 0 with *rep, or -errno with err. */
static int client_set_on(struct client *c, Spillway__AdminClientSet *s, Spillway__Ctrl **rep,
			 char *err, size_t cap)
{
	Spillway__Ctrl req = SPILLWAY__CTRL__INIT;
	req.msg_case = SPILLWAY__CTRL__MSG_ADMIN_CLIENT_SET;
	req.admin_client_set = s;
	return ctl_call(c, &req, SPILLWAY__CTRL__MSG_ADMIN_CLIENT_SET_REPLY, rep, err, cap);
}

/* A lone server: its reply as before clusters existed. */
static int client_set_one(const struct ctl *ctl, struct client *c, Spillway__AdminClientSet *s)
{
	Spillway__Ctrl *rep;
	char err[256];
	if (client_set_on(c, s, &rep, err, sizeof(err))) {
		fprintf(stderr, "spillctl: client set %s: %s\n", s->name, err);
		return 1;
	}
	print_client(stdout, rep->admin_client_set_reply->client, ctl->json);
	ctrl_free(rep);
	return 0;
}

static int client_set_all(const struct ctl *ctl, const Spillway__ClusterInfoReply *info,
			  Spillway__AdminClientSet *s)
{
	size_t n = info->n_servers, failed = 0;
	struct set_result *res = calloc(n, sizeof(*res));
	Spillway__Ctrl **reps = calloc(n, sizeof(*reps));
	if (!res || !reps) {
		free(res);
		free(reps);
		fprintf(stderr, "spillctl: %s\n", strerror(ENOMEM));
		return 1;
	}
	for (size_t i = 0; i < n; i++) {
		struct client *c;
		res[i].server = info->servers[i]->url;
		if (!ctl_open(ctl, res[i].server, &c, res[i].err, sizeof(res[i].err))) {
			if (!client_set_on(c, s, &reps[i], res[i].err, sizeof(res[i].err)))
				res[i].client = reps[i]->admin_client_set_reply->client;
			client_close(c);
		}
		failed += !res[i].client;
	}
	cluster_print_set(stdout, s->name, res, n, ctl->json);
	if (failed)
		fprintf(stderr, "spillctl: client set %s: failed on %zu of %zu servers\n", s->name,
			failed, n);
	for (size_t i = 0; i < n; i++)
		if (reps[i])
			ctrl_free(reps[i]);
	free(reps);
	free(res);
	return failed ? 1 : 0;
}

int cluster_client_set_cmd(const struct ctl *ctl, int argc, char **argv)
{
	Spillway__AdminClientSet s = SPILLWAY__ADMIN_CLIENT_SET__INIT;
	if (ctl_parse_client_set(argc, argv, &s))
		return EXIT_USAGE;
	struct cluster cl;
	int rc = cluster_open(ctl, &cl);
	const Spillway__ClusterInfoReply *info = cluster_info(&cl);
	if (!rc && info && info->n_servers > 1)
		rc = client_set_all(ctl, info, &s);
	else if (!rc)
		rc = client_set_one(ctl, cl.server, &s);
	cluster_close(&cl);
	return rc;
}

static volatile sig_atomic_t stopping;

static void on_stop(int sig)
{
	(void)sig;
	stopping = 1;
}

/* SIGINT and SIGTERM end the wait (no SA_RESTART: sleeps return early). */
static void catch_stop(void)
{
	struct sigaction sa = { .sa_handler = on_stop };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000 };
	nanosleep(&ts, NULL);
}

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Print the events after *after and move *after past them; 0 or 1. */
static int events_once(const struct ctl *ctl, struct cluster *cl, uint64_t *after)
{
	Spillway__AdminEvents ev = SPILLWAY__ADMIN_EVENTS__INIT;
	ev.after_seq = *after;
	Spillway__Ctrl req = SPILLWAY__CTRL__INIT, *rep;
	req.msg_case = SPILLWAY__CTRL__MSG_ADMIN_EVENTS;
	req.admin_events = &ev;
	if (cluster_ask_arbiter(ctl, cl, &req, SPILLWAY__CTRL__MSG_ADMIN_EVENTS_REPLY, &rep))
		return 1;
	const Spillway__AdminEventsReply *r = rep->admin_events_reply;
	for (size_t i = 0; i < r->n_events; i++) {
		if (r->events[i]->seq <= *after)
			continue; /* already shown */
		cluster_print_event(stdout, r->events[i], ctl->json);
		*after = r->events[i]->seq;
	}
	if (r->last_seq > *after)
		*after = r->last_seq;
	ctrl_free(rep);
	fflush(stdout);
	return 0;
}

int cluster_events_cmd(const struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "follow", no_argument, NULL, 'f' },
		{ "after", required_argument, NULL, 'a' },
		{ NULL, 0, NULL, 0 },
	};
	int opt, follow = 0;
	uint64_t after = 0;
	optind = 0; /* see ctl_getopt */
	while ((opt = ctl_getopt(argc, argv, opts, "events")) != -1) {
		char *end;
		switch (opt) {
		case 'f':
			follow = 1;
			break;
		case 'a':
			errno = 0;
			after = strtoull(optarg, &end, 10);
			if (errno || end == optarg || *end || optarg[0] == '-')
				return ctl_usage_error("--after: bad sequence number '%s'", optarg);
			break;
		default:
			return EXIT_USAGE;
		}
	}
	if (optind != argc)
		return ctl_usage_error("events: unexpected argument '%s'", argv[optind]);
	struct cluster cl;
	int rc = cluster_open(ctl, &cl);
	if (!rc && !arbiter_url(&cl)[0]) {
		fprintf(stderr, "spillctl: events: %s knows no arbiter (spillwayd --arbiter-url)\n",
			ctl->server);
		rc = 1;
	}
	if (!rc && !ctl->json)
		cluster_print_events_header(stdout);
	if (follow)
		catch_stop();
	if (!rc)
		rc = events_once(ctl, &cl, &after);
	while (!rc && follow && !stopping) {
		sleep_ms(POLL_MS);
		if (!stopping)
			rc = events_once(ctl, &cl, &after);
	}
	cluster_close(&cl);
	return stopping ? 0 : rc;
}

static int send_drain(struct client *c, int drain, Spillway__Ctrl **rep, char *err, size_t cap)
{
	Spillway__AdminDrain d = SPILLWAY__ADMIN_DRAIN__INIT;
	d.drain = drain;
	Spillway__Ctrl req = SPILLWAY__CTRL__INIT;
	req.msg_case = SPILLWAY__CTRL__MSG_ADMIN_DRAIN;
	req.admin_drain = &d;
	return ctl_call(c, &req, SPILLWAY__CTRL__MSG_ADMIN_DRAIN_REPLY, rep, err, cap);
}

/* Poll the server's used bytes until 0, the timeout (0: none) or a signal. */
static int drain_wait(const struct ctl *ctl, struct client *c, const char *url, uint64_t used,
		      unsigned timeout_s)
{
	int bar = !ctl->json && isatty(STDOUT_FILENO);
	struct drain_progress p = { .server = url, .used = used, .total = used };
	uint64_t start = now_ms();
	catch_stop();
	for (;;) {
		p.elapsed_ms = now_ms() - start;
		p.done = p.used == 0;
		p.timed_out = !p.done && timeout_s && p.elapsed_ms >= (uint64_t)timeout_s * 1000;
		cluster_print_drain(stdout, &p, bar);
		fflush(stdout);
		if (p.done)
			return 0;
		if (p.timed_out) {
			fprintf(stderr, "spillctl: server drain %s: not drained after %us, %llu bytes left\n",
				url, timeout_s, (unsigned long long)p.used);
			return 1;
		}
		sleep_ms(POLL_MS);
		if (stopping) {
			if (bar)
				fputc('\n', stdout);
			fprintf(stderr, "spillctl: server drain %s: stopped waiting; the server keeps "
					"draining (server undrain cancels)\n", url);
			return 1;
		}
		Spillway__Ctrl *rep;
		if (ctl_admin_status(c, &rep))
			return 1;
		p.used = rep->admin_status_reply->used_bytes;
		ctrl_free(rep);
		if (p.used > p.total)
			p.total = p.used;
	}
}

int cluster_drain_cmd(const struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "no-wait", no_argument, NULL, 'n' },
		{ "timeout", required_argument, NULL, 't' },
		{ NULL, 0, NULL, 0 },
	};
	int drain = !strcmp(argv[0], "drain");
	const char *what = drain ? "server drain" : "server undrain";
	int opt, wait = drain;
	long timeout_s = 0;
	optind = 0; /* see ctl_getopt */
	while ((opt = ctl_getopt(argc, argv, drain ? opts : opts + 2, what)) != -1) {
		switch (opt) {
		case 'n':
			wait = 0;
			break;
		case 't':
			if (config_parse_int(optarg, 1, 86400 * 7, &timeout_s))
				return ctl_usage_error("--timeout: bad seconds '%s'", optarg);
			break;
		default:
			return EXIT_USAGE;
		}
	}
	if (argc - optind != 1)
		return ctl_usage_error("%s: give the server's URL", what);
	const char *url = argv[optind];
	struct client *c;
	if (ctl_connect(ctl, url, &c))
		return 1;
	Spillway__Ctrl *rep;
	char err[256];
	int rc = send_drain(c, drain, &rep, err, sizeof(err));
	if (rc) {
		fprintf(stderr, "spillctl: %s %s: %s\n", what, url, err);
		client_close(c);
		return 1;
	}
	const Spillway__ServerInfo *s = rep->admin_drain_reply->server;
	if (wait)
		rc = drain_wait(ctl, c, url, s->used_bytes, (unsigned)timeout_s);
	else
		cluster_print_server(stdout, s, ctl->json);
	ctrl_free(rep);
	client_close(c);
	return rc;
}
