/* SPDX-License-Identifier: MIT */
/*
 * `spillway-bench demo`: the README walk-through. Start a spillwayd on
 * loopback (unless --server is given), run the sample program (demo_sample.c)
 * through libspillway with a local budget of one eighth of its data, show
 * `spillctl status` while its region is still on the server, then stop.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "bench.h"
#include "config.h"
#include "demo.h"

#define DEFAULT_SIZE (256ull << 20)
#define UNIT         (2ull << 20)   /* sizes round up to whole 2 MiB groups */
#define HEADROOM     (64ull << 20)

struct demo_cfg {
	const char *server;
	uint64_t size;
	const char *psk_file;
};

static int usage(FILE *out, int rc)
{
	fprintf(out,
		"usage: spillway-bench demo [--server URL] [--size SIZE] [--psk-file FILE]\n"
		"  --server URL      use this spillwayd (default: start one on loopback)\n"
		"  --size SIZE       records to sort through the pager, e.g. 256M (default);\n"
		"                    the local budget is an eighth of it\n"
		"  --psk-file FILE   pre-shared key (also given to a spillwayd started here)\n");
	return rc;
}

static int parse_args(int argc, char **argv, struct demo_cfg *cfg)
{
	static const struct option opts[] = {
		{ "server", required_argument, NULL, 's' },
		{ "size", required_argument, NULL, 'z' },
		{ "psk-file", required_argument, NULL, 'k' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	*cfg = (struct demo_cfg){ .size = DEFAULT_SIZE };
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			cfg->server = optarg;
			break;
		case 'z':
			if (config_parse_size(optarg, &cfg->size) || cfg->size == 0) {
				fprintf(stderr, "spillway-bench demo: bad --size '%s'\n", optarg);
				return 2;
			}
			break;
		case 'k':
			cfg->psk_file = optarg;
			break;
		case 'h':
			return usage(stdout, 1);
		default:
			return usage(stderr, 2);
		}
	}
	if (optind < argc)
		return usage(stderr, 2);
	/* Whole 2 MiB groups, at least 8 of them so the budget is one. */
	cfg->size = (cfg->size + UNIT - 1) / UNIT * UNIT;
	if (cfg->size < 8 * UNIT)
		cfg->size = 8 * UNIT;
	return 0;
}

struct status_arg {
	const struct demo_cfg *cfg;
	const char *url;
};

/* `spillctl status` while the sample's region is still on the server. */
static int show_status(void *argp)
{
	const struct status_arg *a = argp;
	char path[PATH_MAX];
	spawn_find_tool("spillctl", "SPILLCTL", path, sizeof(path));
	char *argv[8] = { path, "--server", (char *)a->url };
	int argc = 3;
	if (a->cfg->psk_file) {
		argv[argc++] = "--psk-file";
		argv[argc++] = (char *)a->cfg->psk_file;
	}
	argv[argc++] = "status";
	argv[argc] = NULL;
	printf("\n$ spillctl --server %s%s%s status\n", a->url, a->cfg->psk_file ? " --psk-file " : "",
	       a->cfg->psk_file ? a->cfg->psk_file : "");
	int rc = spawn_run(argv, 30000);
	if (rc) {
		fprintf(stderr, "spillway-bench demo: %s %s\n", path,
			rc < 0 ? strerror(-rc) : rc == 127 ? "could not be run" : "failed");
		return -EIO;
	}
	printf("\n");
	return 0;
}

static int spawn_server(const struct demo_cfg *cfg, struct proc *p, char *url, size_t cap)
{
	uint64_t mib = (cfg->size + HEADROOM) >> 20;
	char capacity[32];
	int port;
	snprintf(capacity, sizeof(capacity), "%lluM", (unsigned long long)mib);
	int rc = spawn_spillwayd(capacity, cfg->psk_file, p, &port);
	if (rc) {
		fprintf(stderr, "spillway-bench demo: cannot start spillwayd: %s\n", strerror(-rc));
		return rc;
	}
	snprintf(url, cap, "tcp://127.0.0.1:%d", port);
	printf("started spillwayd (pid %d) on %s with a %s pool\n", (int)p->pid, url, capacity);
	return 0;
}

int cmd_demo(int argc, char **argv)
{
	struct demo_cfg cfg;
	int rc = parse_args(argc, argv, &cfg);
	if (rc)
		return rc == 1 ? 0 : rc;
	struct proc p = { 0 };
	char url[300];
	if (cfg.server)
		snprintf(url, sizeof(url), "%s", cfg.server);
	else if (spawn_server(&cfg, &p, url, sizeof(url)))
		return 1;
	struct demo_sample_cfg sc = { .url = url, .psk_file = cfg.psk_file, .bytes = cfg.size };
	rc = auth_random(&sc.seed, sizeof(sc.seed));
	struct status_arg sa = { &cfg, url };
	if (!rc)
		rc = demo_sample(&sc, show_status, &sa);
	if (!rc)
		printf("freed the region and closed the pager\n");
	if (p.pid > 0) {
		int status = -1;
		proc_stop(&p, &status);
		if (status == 0) {
			printf("spillwayd stopped on SIGTERM with exit status 0\n");
		} else {
			fprintf(stderr, "spillway-bench demo: spillwayd exited with status %d after SIGTERM\n",
				status);
			rc = rc ? rc : -ECHILD;
		}
	}
	if (rc) {
		fprintf(stderr, "spillway-bench demo: FAILED (%s)\n", strerror(-rc));
		return 1;
	}
	printf("demo OK\n");
	return 0;
}
