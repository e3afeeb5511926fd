/* SPDX-License-Identifier: MIT */
/*
 *   spillctl export create NAME --size SIZE [--client CLIENT]
 *   spillctl export list
 *   spillctl export delete NAME
 * Exit status as spillctl: 0, 1 error (one line), 2 usage.
 */
#include "spillctl_export.h"

#include <errno.h>
#include <getopt.h>
#include <string.h>

#include "auth.h"
#include "client.h"
#include "config.h"
#include "ctrl.h"

#define EXIT_USAGE 2

void export_usage(FILE *out)
{
	fprintf(out,
		"  export create NAME --size SIZE [--client CLIENT]\n"
		"                              an NBD export (spillwayd --nbd), memory drawn lazily\n"
		"                              as CLIENT (default nbd:NAME)\n"
		"  export list                 NBD exports, their use and connections\n"
		"  export delete NAME          delete an export (none may be connected)\n");
}

static int usage(const char *fmt, const char *arg)
{
	fprintf(stderr, "spillctl: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, " (see spillctl --help)\n");
	return EXIT_USAGE;
}

static int parse_create(int argc, char **argv, Spillway__AdminExportCreate *m)
{
	static const struct option opts[] = {
		{ "size", required_argument, NULL, 's' },
		{ "client", required_argument, NULL, 'c' },
		{ NULL, 0, NULL, 0 },
	};
	m->name = argv[0];
	if (!ctrl_export_name_valid(m->name))
		return usage("bad export name '%s' (1-60 of [A-Za-z0-9._:-])", m->name);
	int opt;
	optind = 1;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
		switch (opt) {
		case 's':
			if (config_parse_size(optarg, &m->size_bytes) || !m->size_bytes ||
			    m->size_bytes % 4096 || m->size_bytes > CTRL_EXPORT_MAX_BYTES)
				return usage("--size: '%s' is not a multiple of 4K up to 1T", optarg);
			break;
		case 'c':
			if (!ctrl_name_valid(optarg))
				return usage("--client: bad client name '%s'", optarg);
			m->client = optarg;
			break;
		case ':':
			return usage("export create: '%s' needs a value", argv[optind - 1]);
		default:
			return usage("export create: unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind != argc)
		return usage("export create: unexpected argument '%s'", argv[optind]);
	if (!m->size_bytes)
		return usage("export create %s: give --size", m->name);
	return 0;
}

static int connect_admin(const char *server, const char *psk_file, struct client **c)
{
	struct auth_psk psk;
	struct client_opts o = { .timeout_ms = 10000 };
	if (psk_file) {
		int rc = auth_psk_load(psk_file, &psk);
		if (rc) {
			fprintf(stderr, "spillctl: %s: %s\n", psk_file, auth_psk_strerror(rc));
			return 1;
		}
		o.psk = &psk;
	}
	char err[256];
	if (client_connect(server, &o, c, err, sizeof(err))) {
		fprintf(stderr, "spillctl: %s\n", err);
		return 1;
	}
	return 0;
}

int spillctl_export(int argc, char **argv, const char *server, const char *psk_file, int json)
{
	Spillway__AdminExportCreate create = SPILLWAY__ADMIN_EXPORT_CREATE__INIT;
	Spillway__AdminExportList list = SPILLWAY__ADMIN_EXPORT_LIST__INIT;
	Spillway__AdminExportDelete del = SPILLWAY__ADMIN_EXPORT_DELETE__INIT;
	Spillway__Ctrl req = SPILLWAY__CTRL__INIT, *rep;
	const char *what = argc ? argv[0] : "";
	if (!strcmp(what, "create") && argc >= 2) {
		if (parse_create(argc - 1, argv + 1, &create))
			return EXIT_USAGE;
		req.msg_case = SPILLWAY__CTRL__MSG_ADMIN_EXPORT_CREATE;
		req.admin_export_create = &create;
	} else if (!strcmp(what, "list") && argc == 1) {
		req.msg_case = SPILLWAY__CTRL__MSG_ADMIN_EXPORT_LIST;
		req.admin_export_list = &list;
	} else if (!strcmp(what, "delete") && argc == 2) {
		del.name = argv[1];
		if (!ctrl_export_name_valid(del.name))
			return usage("bad export name '%s'", del.name);
		req.msg_case = SPILLWAY__CTRL__MSG_ADMIN_EXPORT_DELETE;
		req.admin_export_delete = &del;
	} else {
		return usage("export: expected create NAME --size SIZE, list or delete NAME%s", "");
	}
	struct client *c;
	if (connect_admin(server, psk_file, &c))
		return 1;
	char err[256] = "";
	int rc = client_ctrl(c, &req, &rep, err, sizeof(err));
	client_close(c);
	if (rc) {
		fprintf(stderr, "spillctl: export %s: %s\n", what, err[0] ? err : strerror(-rc));
		return 1;
	}
	if (rep->msg_case == SPILLWAY__CTRL__MSG_ADMIN_EXPORT_LIST_REPLY)
		export_print(stdout, rep->admin_export_list_reply->exports,
			     rep->admin_export_list_reply->n_exports, json);
	else if (rep->msg_case == SPILLWAY__CTRL__MSG_ADMIN_EXPORT_CREATE_REPLY)
		export_print(stdout, &rep->admin_export_create_reply->info, 1, json);
	else if (json)
		printf("{\"deleted\":\"%s\"}\n", del.name);
	else
		printf("export %s deleted\n", del.name);
	ctrl_free(rep);
	return 0;
}
