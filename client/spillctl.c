/* SPDX-License-Identifier: MIT */
/*
 * spillctl: the operator's view of a spillwayd and of its cluster.
 *
 *   spillctl [--server URL] [--psk-file F] [--json] COMMAND [ARGS] [--json]
 *
 * The commands are in the table at the end of this file; the cluster ones
 * live in spillctl_cluster.c, swap in spillctl_swap.c, export in
 * spillctl_export.c.
 *
 * Exit status: 0 success, 1 error (one line on stderr), 2 usage error.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "client.h"
#include "config.h"
#include "spillctl.h"
#include "spillctl_cluster.h"
#include "spillctl_swap.h"
#include "spillctl_export.h"

#define SPILLCTL_TCP_URL "tcp://127.0.0.1:7707"
#define SPILLCTL_ADMIN_URL "unix:///run/spillway/spillwayd.sock" /* spillwayd's default */

int ctl_usage_error(const char *fmt, const char *arg)
{
	fprintf(stderr, "spillctl: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, " (see spillctl --help)\n");
	return EXIT_USAGE;
}

int ctl_open(const struct ctl *ctl, const char *url, struct client **c, char *err, size_t cap)
{
	struct auth_psk psk;
	struct client_opts o = { .timeout_ms = 10000 };
	if (ctl->psk_file) {
		int rc = auth_psk_load(ctl->psk_file, &psk);
		if (rc) {
			snprintf(err, cap, "%s: %s", ctl->psk_file, auth_psk_strerror(rc));
			return -EINVAL;
		}
		o.psk = &psk;
	}
	err[0] = '\0';
	int rc = client_connect(url, &o, c, err, cap);
	if (rc && !err[0])
		snprintf(err, cap, "%s: %s", url, strerror(-rc));
	if (rc) /* it may quote a URL a server gave us */
		snprintf(err, cap, "%s", escape_text(err));
	return rc;
}

int ctl_connect(const struct ctl *ctl, const char *url, struct client **c)
{
	char err[256];
	if (ctl_open(ctl, url, c, err, sizeof(err))) {
		fprintf(stderr, "spillctl: %s\n", err);
		return 1;
	}
	return 0;
}

int ctl_call(struct client *c, Spillway__Ctrl *req, Spillway__Ctrl__MsgCase want,
	     Spillway__Ctrl **rep, char *err, size_t cap)
{
	err[0] = '\0';
	int rc = client_ctrl(c, req, rep, err, cap);
	if (!rc && (*rep)->msg_case != want) {
		ctrl_free(*rep);
		rc = -EPROTO;
	}
	if (rc && !err[0])
		snprintf(err, cap, "%s", strerror(-rc));
	if (rc)
		snprintf(err, cap, "%s", escape_text(err));
	return rc;
}

int ctl_all_pages(const struct ctl_pages *p, Spillway__Ctrl **rep)
{
	char after[CTRL_NAME_MAX + 1] = "";
	*rep = NULL;
	for (;;) {
		Spillway__Ctrl *page;
		if (p->ask(p->arg, after, &page)) {
			if (*rep)
				ctrl_free(*rep);
			return 1;
		}
		const char *next = p->next(page);
		/* A cursor that does not move on would never end. */
		int last = !next[0] || strlen(next) > CTRL_NAME_MAX || strcmp(next, after) <= 0;
		if (!last)
			strcpy(after, next);
		if (!*rep) {
			*rep = page;
		} else {
			int rc = p->merge(*rep, page);
			ctrl_free(page);
			if (rc) {
				fprintf(stderr, "spillctl: out of memory\n");
				ctrl_free(*rep);
				return 1;
			}
		}
		if (last)
			return 0;
	}
}

int ctl_append_ptrs(void *all, size_t *n_all, const void *page, size_t *n_page)
{
	void *v;
	memcpy(&v, all, sizeof(v));
	v = realloc(v, (*n_all + *n_page) * sizeof(void *));
	if (!v)
		return -ENOMEM;
	memcpy((char *)v + *n_all * sizeof(void *), page, *n_page * sizeof(void *));
	memcpy(all, &v, sizeof(v));
	*n_all += *n_page;
	*n_page = 0; /* now all's to free */
	return 0;
}

static int status_ask(void *arg, const char *after, Spillway__Ctrl **page)
{
	Spillway__AdminStatus a = SPILLWAY__ADMIN_STATUS__INIT;
	Spillway__Ctrl req = SPILLWAY__CTRL__INIT;
	req.msg_case = SPILLWAY__CTRL__MSG_ADMIN_STATUS;
	req.admin_status = &a;
	a.after_name = (char *)after;
	char err[256];
	if (ctl_call(arg, &req, SPILLWAY__CTRL__MSG_ADMIN_STATUS_REPLY, page, err, sizeof(err))) {
		fprintf(stderr, "spillctl: %s\n", err);
		return 1;
	}
	return 0;
}

static const char *status_next(const Spillway__Ctrl *page)
{
	return page->admin_status_reply->next_after;
}

static int status_merge(Spillway__Ctrl *all, Spillway__Ctrl *page)
{
	Spillway__AdminStatusReply *a = all->admin_status_reply, *p = page->admin_status_reply;
	return ctl_append_ptrs(&a->clients, &a->n_clients, p->clients, &p->n_clients);
}

/* The server's status with every client: servers send clients in pages,
 * asked for one after another until a page says it is the last. */
int ctl_admin_status(struct client *c, Spillway__Ctrl **rep)
{
	const struct ctl_pages p = { status_ask, status_next, status_merge, c };
	return ctl_all_pages(&p, rep);
}

int ctl_getopt(int argc, char **argv, const struct option *opts, const char *cmd)
{
	int opt = getopt_long(argc, argv, ":", opts, NULL);
	if (opt == ':' || opt == '?') {
		fprintf(stderr, "spillctl: %s: %s '%s' (see spillctl --help)\n", cmd,
			opt == ':' ? "missing value for" : "unknown option", argv[optind - 1]);
		return '?';
	}
	return opt;
}

/* Exactly n arguments after the command word, none an option; 0 or EXIT_USAGE. */
int ctl_positional(int argc, char **argv, int n, const char *cmd)
{
	static const struct option none[] = { { NULL, 0, NULL, 0 } };
	optind = 0; /* see ctl_getopt */
	if (ctl_getopt(argc, argv, none, cmd) != -1)
		return EXIT_USAGE;
	if (argc - optind != n) {
		fprintf(stderr, "spillctl: %s: expected %d argument%s, got %d (see spillctl --help)\n",
			cmd, n, n == 1 ? "" : "s", argc - optind);
		return EXIT_USAGE;
	}
	return 0;
}

static int cmd_status(const struct ctl *ctl, int argc, char **argv)
{
	if (ctl_positional(argc, argv, 0, "status"))
		return EXIT_USAGE;
	struct client *c;
	if (ctl_connect(ctl, ctl->server, &c))
		return 1;
	Spillway__Ctrl *rep;
	int rc = ctl_admin_status(c, &rep);
	client_close(c);
	if (rc)
		return 1;
	print_status(stdout, rep->admin_status_reply, ctl->json);
	ctrl_free(rep);
	return 0;
}

int ctl_parse_client_set(int argc, char **argv, Spillway__AdminClientSet *s)
{
	static const struct option opts[] = {
		{ "priority", required_argument, NULL, 'p' },
		{ "reservation", required_argument, NULL, 'r' },
		{ "limit", required_argument, NULL, 'l' },
		{ NULL, 0, NULL, 0 },
	};
	int opt;
	long prio;
	optind = 0; /* see ctl_getopt */
	while ((opt = ctl_getopt(argc, argv, opts, "client set")) != -1) {
		switch (opt) {
		case 'p':
			if (config_parse_int(optarg, -1000, 1000, &prio))
				return ctl_usage_error("--priority must be -1000..1000, not '%s'", optarg);
			s->set_priority = 1;
			s->priority = (int32_t)prio;
			break;
		case 'r':
			if (config_parse_size(optarg, &s->reservation_bytes))
				return ctl_usage_error("--reservation: bad size '%s'", optarg);
			s->set_reservation = 1;
			break;
		case 'l':
			if (config_parse_size(optarg, &s->limit_bytes))
				return ctl_usage_error("--limit: bad size '%s'", optarg);
			s->set_limit = 1;
			break;
		default:
			return EXIT_USAGE;
		}
	}
	if (argc - optind != 1)
		return ctl_usage_error("client set: give one NAME%s", "");
	s->name = argv[optind];
	if (!ctrl_name_valid(s->name))
		return ctl_usage_error("bad client name '%s'", s->name);
	if (!s->set_priority && !s->set_reservation && !s->set_limit)
		return ctl_usage_error("client set %s: give --priority, --reservation or --limit", s->name);
	return 0;
}

/* "client reclaim NAME --bytes SIZE [--deadline-ms N]"; 0 or EXIT_USAGE. */
static int parse_client_reclaim(int argc, char **argv, Spillway__AdminReclaim *r)
{
	static const struct option opts[] = {
		{ "bytes", required_argument, NULL, 'b' },
		{ "deadline-ms", required_argument, NULL, 'd' },
		{ NULL, 0, NULL, 0 },
	};
	int opt;
	long ms;
	optind = 0; /* see ctl_getopt */
	while ((opt = ctl_getopt(argc, argv, opts, "client reclaim")) != -1) {
		switch (opt) {
		case 'b':
			if (config_parse_size(optarg, &r->bytes) || r->bytes == 0)
				return ctl_usage_error("--bytes: bad size '%s'", optarg);
			break;
		case 'd':
			if (config_parse_int(optarg, 0, 86400000, &ms))
				return ctl_usage_error("--deadline-ms: bad value '%s'", optarg);
			r->deadline_ms = (uint64_t)ms;
			break;
		default:
			return EXIT_USAGE;
		}
	}
	if (argc - optind != 1)
		return ctl_usage_error("client reclaim: give one NAME%s", "");
	r->name = argv[optind];
	if (!ctrl_name_valid(r->name))
		return ctl_usage_error("bad client name '%s'", r->name);
	if (!r->bytes)
		return ctl_usage_error("client reclaim %s: give --bytes", r->name);
	return 0;
}

static int cmd_client_reclaim(const struct ctl *ctl, int argc, char **argv)
{
	Spillway__AdminReclaim r = SPILLWAY__ADMIN_RECLAIM__INIT;
	if (parse_client_reclaim(argc, argv, &r))
		return EXIT_USAGE;
	struct client *c;
	if (ctl_connect(ctl, ctl->server, &c))
		return 1;
	Spillway__Ctrl req = SPILLWAY__CTRL__INIT, *rep;
	req.msg_case = SPILLWAY__CTRL__MSG_ADMIN_RECLAIM;
	req.admin_reclaim = &r;
	char err[256];
	int rc = ctl_call(c, &req, SPILLWAY__CTRL__MSG_ADMIN_RECLAIM_REPLY, &rep, err, sizeof(err));
	client_close(c);
	if (rc) {
		fprintf(stderr, "spillctl: client reclaim %s: %s\n", r.name, err);
		return 1;
	}
	uint64_t id = rep->admin_reclaim_reply->reclaim_id;
	if (ctl->json)
		printf("{\"client\":\"%s\",\"reclaim_id\":%llu,\"bytes\":%llu}\n", r.name,
		       (unsigned long long)id, (unsigned long long)r.bytes);
	else
		printf("reclaim %llu sent to %s (%llu bytes); its answer shows in 'spillctl clients'\n",
		       (unsigned long long)id, r.name, (unsigned long long)r.bytes);
	ctrl_free(rep);
	return 0;
}

static int cmd_swap(const struct ctl *ctl, int argc, char **argv)
{
	/* spillway.ko takes TCP sockets only, so never the admin socket. */
	return spillctl_swap(argc - 1, argv + 1, ctl->tcp_server, ctl->psk_file, ctl->json);
}

static int cmd_export(const struct ctl *ctl, int argc, char **argv)
{
	return spillctl_export(argc - 1, argv + 1, ctl->server, ctl->psk_file, ctl->json);
}

/* One command: its words, its help, and what runs it. run gets the
 * arguments after the first word ("set NAME ..." for "client set"), so
 * argv[0] is a command word getopt skips. */
struct command {
	const char *word;     /* first word */
	const char *sub;      /* second word, or NULL */
	int own_json;         /* parses its own arguments (swap, export): --json not lifted */
	int (*run)(const struct ctl *ctl, int argc, char **argv);
	void (*help)(FILE *out); /* or text */
	const char *text;
};

static const struct command commands[] = {
	{ "status", NULL, 0, cmd_status, NULL,
	  "  status                      capacity, use per NUMA node, clients (this server)\n" },
	{ "clients", NULL, 0, cluster_clients_cmd, NULL,
	  "  clients [--local]           every client and its quota: cluster totals from the\n"
	  "                              arbiter, or this server's view (--local, no arbiter)\n" },
	{ "client", "set", 0, cluster_client_set_cmd, NULL,
	  "  client set NAME [--priority N] [--reservation SIZE] [--limit SIZE]\n"
	  "                              set a client's quota on every server of the cluster\n"
	  "                              (applies now and on reconnect)\n" },
	{ "client", "reclaim", 0, cmd_client_reclaim, NULL,
	  "  client reclaim NAME --bytes SIZE [--deadline-ms N]\n"
	  "                              ask a connected client to give memory back\n" },
	{ "cluster", "status", 0, cluster_status_cmd, NULL,
	  "  cluster status              servers, totals, watermarks (from the arbiter)\n" },
	{ "events", NULL, 0, cluster_events_cmd, NULL,
	  "  events [--follow] [--after SEQ]\n"
	  "                              the arbiter's decisions; --follow waits for more\n" },
	{ "server", "drain", 0, cluster_drain_cmd, NULL,
	  "  server drain URL [--no-wait] [--timeout S]\n"
	  "                              move every page off the server at URL, show progress\n" },
	{ "server", "undrain", 0, cluster_drain_cmd, NULL,
	  "  server undrain URL          let the server at URL take extents again\n" },
	{ "swap", NULL, 1, cmd_swap, swap_usage, NULL },
	{ "export", NULL, 1, cmd_export, export_usage, NULL },
};
#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static void command_help(FILE *out, const struct command *c)
{
	if (c->help)
		c->help(out);
	else
		fputs(c->text, out);
}

static void usage(FILE *out)
{
	fprintf(out, "usage: spillctl [--server URL] [--psk-file FILE] [--json] COMMAND\n"
		     "commands:\n");
	for (size_t i = 0; i < NCOMMANDS; i++)
		command_help(out, &commands[i]);
	fprintf(out,
		"COMMAND --help shows that command alone; --json may also follow the command.\n"
		"defaults: --server $SPILLWAY_SERVER, else the local admin socket\n"
		"          " SPILLCTL_ADMIN_URL " if it exists, else " SPILLCTL_TCP_URL ",\n"
		"          --psk-file $SPILLWAY_PSK_FILE\n");
}

/* No --server and no $SPILLWAY_SERVER: the admin socket of a server on this
 * host when there is one we may connect to (operator commands work there as
 * root or as a member of the server's --admin-group), else TCP on loopback
 * (so a user outside that group still reads status as before). */
static const char *default_server(void)
{
	struct stat st;
	const char *url = SPILLCTL_ADMIN_URL, *path = url + strlen("unix://");
	if (!stat(path, &st) && S_ISSOCK(st.st_mode) && !access(path, W_OK))
		return SPILLCTL_ADMIN_URL;
	return SPILLCTL_TCP_URL;
}

static int is_help(const char *a)
{
	return !strcmp(a, "--help") || !strcmp(a, "-h");
}

/* COMMAND [SUB] ARGS: find it, answer --help, lift --json, run it. */
static int dispatch(struct ctl *ctl, int argc, char **argv)
{
	const char *word = argv[0], *sub = argc > 1 ? argv[1] : "";
	const struct command *cmd = NULL;
	int group = 0;
	for (size_t i = 0; i < NCOMMANDS && !cmd; i++) {
		if (strcmp(commands[i].word, word))
			continue;
		group = 1;
		if (!commands[i].sub || !strcmp(commands[i].sub, sub))
			cmd = &commands[i];
	}
	if (!cmd && group && is_help(sub)) {
		for (size_t i = 0; i < NCOMMANDS; i++)
			if (!strcmp(commands[i].word, word))
				command_help(stdout, &commands[i]);
		return 0;
	}
	if (!cmd)
		return ctl_usage_error(group ? "unknown command or wrong arguments: '%s'"
					     : "unknown command '%s'", word);
	int skip = cmd->sub ? 1 : 0; /* run sees argv from the last command word */
	int n = 1;
	for (int i = 1 + skip; i < argc; i++) {
		if (is_help(argv[i])) {
			command_help(stdout, cmd);
			return 0;
		}
		if (!cmd->own_json && !strcmp(argv[i], "--json"))
			ctl->json = 1;
		else
			argv[skip + n++] = argv[i];
	}
	opterr = 0;
	return cmd->run(ctl, n, argv + skip);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "server", required_argument, NULL, 's' },
		{ "psk-file", required_argument, NULL, 'k' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct ctl ctl = {
		.server = getenv("SPILLWAY_SERVER"),
		.psk_file = getenv("SPILLWAY_PSK_FILE"),
	};
	int opt;
	opterr = 0; /* our own one-line messages only */
	/* '+': stop at the command; its own options are parsed after it. */
	while ((opt = getopt_long(argc, argv, "+:h", opts, NULL)) != -1) {
		switch (opt) {
		case 's': ctl.server = optarg; break;
		case 'k': ctl.psk_file = optarg; break;
		case 'j': ctl.json = 1; break;
		case 'h': usage(stdout); return 0;
		case ':': return ctl_usage_error("'%s' needs a value", argv[optind - 1]);
		default: return ctl_usage_error("unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	ctl.tcp_server = ctl.server ? ctl.server : SPILLCTL_TCP_URL;
	if (!ctl.server)
		ctl.server = default_server();
	return dispatch(&ctl, argc - optind, argv + optind);
}
