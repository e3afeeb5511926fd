/* SPDX-License-Identifier: MIT */
/*
 * spillctl: the operator's view of a spillwayd.
 *
 *   spillctl [--server URL] [--psk-file F] [--json] status
 *   spillctl [...] clients
 *   spillctl [...] client set NAME [--priority N] [--reservation SIZE] [--limit SIZE]
 *   spillctl [...] swap attach|detach|status ...   (spillctl_swap.c)
 *   spillctl [...] export create|list|delete ...   (spillctl_export.c)
 *
 * Exit status: 0 success, 1 error (one line on stderr), 2 usage error.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "config.h"
#include "spillctl.h"
#include "spillctl_swap.h"
#include "spillctl_export.h"

#define EXIT_USAGE 2

struct ctl {
	const char *server;
	const char *psk_file;
	int json;
};

static void usage(FILE *out)
{
	fprintf(out,
		"usage: spillctl [--server URL] [--psk-file FILE] [--json] COMMAND\n"
		"commands:\n"
		"  status                      capacity, use per NUMA node, clients\n"
		"  clients                     every client identity and its quota\n"
		"  client set NAME [--priority N] [--reservation SIZE] [--limit SIZE]\n"
		"                              set a client's quota (applies now and on reconnect)\n"
		"  client reclaim NAME --bytes SIZE [--deadline-ms N]\n"
		"                              ask a connected client to give memory back\n");
	swap_usage(out);
	export_usage(out);
	fprintf(out,
		"defaults: --server $SPILLWAY_SERVER or tcp://127.0.0.1:7707,\n"
		"          --psk-file $SPILLWAY_PSK_FILE\n");
}

static int usage_error(const char *fmt, const char *arg)
{
	fprintf(stderr, "spillctl: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, " (see spillctl --help)\n");
	return EXIT_USAGE;
}

static int connect_admin(const struct ctl *ctl, struct client **c)
{
	struct auth_psk psk;
	struct client_opts o = { .timeout_ms = 10000 };
	if (ctl->psk_file) {
		int rc = auth_psk_load(ctl->psk_file, &psk);
		if (rc) {
			fprintf(stderr, "spillctl: %s: %s\n", ctl->psk_file, auth_psk_strerror(rc));
			return 1;
		}
		o.psk = &psk;
	}
	char err[256];
	int rc = client_connect(ctl->server, &o, c, err, sizeof(err));
	if (rc) {
		fprintf(stderr, "spillctl: %s\n", err);
		return 1;
	}
	return 0;
}

static int admin_status(struct client *c, Spillway__Ctrl **reply)
{
	Spillway__AdminStatus a = SPILLWAY__ADMIN_STATUS__INIT;
	Spillway__Ctrl req = SPILLWAY__CTRL__INIT;
	req.msg_case = SPILLWAY__CTRL__MSG_ADMIN_STATUS;
	req.admin_status = &a;
	char err[256] = "";
	int rc = client_ctrl(c, &req, reply, err, sizeof(err));
	if (!rc && (*reply)->msg_case != SPILLWAY__CTRL__MSG_ADMIN_STATUS_REPLY) {
		ctrl_free(*reply);
		rc = -EPROTO;
	}
	if (rc)
		fprintf(stderr, "spillctl: %s\n", err[0] ? err : strerror(-rc));
	return rc ? 1 : 0;
}

static int cmd_status(struct client *c, const struct ctl *ctl, int clients_only)
{
	Spillway__Ctrl *rep;
	if (admin_status(c, &rep))
		return 1;
	const Spillway__AdminStatusReply *r = rep->admin_status_reply;
	if (clients_only)
		print_clients(stdout, r->clients, r->n_clients, ctl->json);
	else
		print_status(stdout, r, ctl->json);
	ctrl_free(rep);
	return 0;
}

/* Parse "client set NAME [options]" into s; 0 or EXIT_USAGE. */
static int parse_client_set(int argc, char **argv, Spillway__AdminClientSet *s)
{
	static const struct option opts[] = {
		{ "priority", required_argument, NULL, 'p' },
		{ "reservation", required_argument, NULL, 'r' },
		{ "limit", required_argument, NULL, 'l' },
		{ NULL, 0, NULL, 0 },
	};
	s->name = argv[0];
	if (!ctrl_name_valid(s->name))
		return usage_error("bad client name '%s'", s->name);
	int opt;
	long prio;
	optind = 1;
	while ((opt = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
		switch (opt) {
		case 'p':
			if (config_parse_int(optarg, -1000, 1000, &prio))
				return usage_error("--priority must be -1000..1000, not '%s'", optarg);
			s->set_priority = 1;
			s->priority = (int32_t)prio;
			break;
		case 'r':
			if (config_parse_size(optarg, &s->reservation_bytes))
				return usage_error("--reservation: bad size '%s'", optarg);
			s->set_reservation = 1;
			break;
		case 'l':
			if (config_parse_size(optarg, &s->limit_bytes))
				return usage_error("--limit: bad size '%s'", optarg);
			s->set_limit = 1;
			break;
		case ':':
			return usage_error("client set: '%s' needs a value", argv[optind - 1]);
		default:
			return usage_error("client set: unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind != argc)
		return usage_error("client set: unexpected argument '%s'", argv[optind]);
	if (!s->set_priority && !s->set_reservation && !s->set_limit)
		return usage_error("client set %s: give --priority, --reservation or --limit", s->name);
	return 0;
}

static int cmd_client_set(struct client *c, const struct ctl *ctl, Spillway__AdminClientSet *s)
{
	Spillway__Ctrl req = SPILLWAY__CTRL__INIT, *rep;
	req.msg_case = SPILLWAY__CTRL__MSG_ADMIN_CLIENT_SET;
	req.admin_client_set = s;
	char err[256] = "";
	int rc = client_ctrl(c, &req, &rep, err, sizeof(err));
	if (rc) {
		fprintf(stderr, "spillctl: client set %s: %s\n", s->name, err[0] ? err : strerror(-rc));
		return 1;
	}
	if (rep->msg_case == SPILLWAY__CTRL__MSG_ADMIN_CLIENT_SET_REPLY)
		print_client(stdout, rep->admin_client_set_reply->client, ctl->json);
	ctrl_free(rep);
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
	r->name = argv[0];
	if (!ctrl_name_valid(r->name))
		return usage_error("bad client name '%s'", r->name);
	int opt;
	long ms;
	optind = 1;
	while ((opt = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
		switch (opt) {
		case 'b':
			if (config_parse_size(optarg, &r->bytes) || r->bytes == 0)
				return usage_error("--bytes: bad size '%s'", optarg);
			break;
		case 'd':
			if (config_parse_int(optarg, 0, 86400000, &ms))
				return usage_error("--deadline-ms: bad value '%s'", optarg);
			r->deadline_ms = (uint64_t)ms;
			break;
		case ':':
			return usage_error("client reclaim: '%s' needs a value", argv[optind - 1]);
		default:
			return usage_error("client reclaim: unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind != argc)
		return usage_error("client reclaim: unexpected argument '%s'", argv[optind]);
	if (!r->bytes)
		return usage_error("client reclaim %s: give --bytes", r->name);
	return 0;
}

static int cmd_client_reclaim(struct client *c, const struct ctl *ctl, Spillway__AdminReclaim *r)
{
	Spillway__Ctrl req = SPILLWAY__CTRL__INIT, *rep;
	req.msg_case = SPILLWAY__CTRL__MSG_ADMIN_RECLAIM;
	req.admin_reclaim = r;
	char err[256] = "";
	int rc = client_ctrl(c, &req, &rep, err, sizeof(err));
	if (rc) {
		fprintf(stderr, "spillctl: client reclaim %s: %s\n", r->name, err[0] ? err : strerror(-rc));
		return 1;
	}
	uint64_t id = rep->msg_case == SPILLWAY__CTRL__MSG_ADMIN_RECLAIM_REPLY
			      ? rep->admin_reclaim_reply->reclaim_id : 0;
	if (ctl->json)
		printf("{\"client\":\"%s\",\"reclaim_id\":%llu,\"bytes\":%llu}\n", r->name,
		       (unsigned long long)id, (unsigned long long)r->bytes);
	else
		printf("reclaim %llu sent to %s (%llu bytes); its answer shows in 'spillctl clients'\n",
		       (unsigned long long)id, r->name, (unsigned long long)r->bytes);
	ctrl_free(rep);
	return 0;
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
		.server = getenv("SPILLWAY_SERVER") ? getenv("SPILLWAY_SERVER") : "tcp://127.0.0.1:7707",
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
		case ':': return usage_error("'%s' needs a value", argv[optind - 1]);
		default: return usage_error("unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	const char *cmd = argv[optind];
	int rest = argc - optind - 1;
	char **args = argv + optind + 1;
	if (!strcmp(cmd, "swap"))
		return spillctl_swap(rest, args, ctl.server, ctl.psk_file, ctl.json);
	if (!strcmp(cmd, "export"))
		return spillctl_export(rest, args, ctl.server, ctl.psk_file, ctl.json);
	int kind; /* 0 status, 1 clients, 2 client set, 3 client reclaim */
	if (!strcmp(cmd, "status") && rest == 0)
		kind = 0;
	else if (!strcmp(cmd, "clients") && rest == 0)
		kind = 1;
	else if (!strcmp(cmd, "client") && rest >= 2 && !strcmp(args[0], "set"))
		kind = 2;
	else if (!strcmp(cmd, "client") && rest >= 2 && !strcmp(args[0], "reclaim"))
		kind = 3;
	else
		return usage_error("unknown command or wrong arguments: '%s'", cmd);
	Spillway__AdminClientSet set = SPILLWAY__ADMIN_CLIENT_SET__INIT;
	if (kind == 2 && parse_client_set(rest - 1, args + 1, &set))
		return EXIT_USAGE;
	Spillway__AdminReclaim reclaim = SPILLWAY__ADMIN_RECLAIM__INIT;
	if (kind == 3 && parse_client_reclaim(rest - 1, args + 1, &reclaim))
		return EXIT_USAGE;

	struct client *c;
	if (connect_admin(&ctl, &c))
		return 1;
	int rc = kind == 2   ? cmd_client_set(c, &ctl, &set)
		 : kind == 3 ? cmd_client_reclaim(c, &ctl, &reclaim)
			     : cmd_status(c, &ctl, kind == 1);
	client_close(c);
	return rc;
}
