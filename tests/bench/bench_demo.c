/* SPDX-License-Identifier: MIT */
/*
 * `spillway-bench demo`: the README walk-through. Write SIZE of random pages
 * to a spillwayd (spawned here unless --server is given), read them all back,
 * check every byte, show `spillctl status` while still connected, then stop.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "bench.h"
#include "client.h"
#include "config.h"

#define DEMO_DEPTH   32
#define DEMO_BATCH   16u
#define DEFAULT_SIZE (256ull << 20)
#define HEADROOM     (64ull << 20)
#define SHOW_MISMATCHES 5

struct demo_cfg {
	const char *server;
	uint64_t size;
	const char *psk_file;
};

struct demo {
	struct client *c;
	struct client_extent *ext;
	unsigned nextents;
	uint32_t ext_pages, bp;     /* pages per extent, pages per request */
	uint64_t npages, seed;
	uint16_t op;
	struct client_req req[DEMO_DEPTH];
	uint64_t first[DEMO_DEPTH]; /* first page of each slot's request */
	uint8_t *bufs;
	uint64_t verified, mismatches;
};

static int usage(FILE *out, int rc)
{
	fprintf(out,
		"usage: spillway-bench demo [--server URL] [--size SIZE] [--psk-file FILE]\n"
		"  --server URL      use this spillwayd (default: start one on loopback)\n"
		"  --size SIZE       bytes to write and read back, e.g. 256M (default)\n"
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
	/* Whole 16-page batches. */
	uint64_t unit = DEMO_BATCH * BENCH_PAGE;
	cfg->size = (cfg->size + unit - 1) / unit * unit;
	return 0;
}

static int demo_submit(void *ctx, int slot, uint64_t seq)
{
	struct demo *d = ctx;
	uint64_t g = seq * d->bp;
	uint8_t *buf = d->bufs + (size_t)slot * d->bp * BENCH_PAGE;
	if (d->op == SPILL_OP_WRITE)
		for (uint32_t i = 0; i < d->bp; i++)
			pattern_fill(buf + (size_t)i * BENCH_PAGE, d->seed + g + i);
	d->first[slot] = g;
	d->req[slot] = (struct client_req){
		.op = d->op, .extent = d->ext[g / d->ext_pages].id,
		.page = (uint32_t)(g % d->ext_pages), .npages = (uint16_t)d->bp, .buf = buf,
		.user = &d->first[slot],
	};
	int rc = client_submit(d->c, &d->req[slot]);
	if (rc)
		fprintf(stderr, "spillway-bench demo: submit: %s\n", strerror(-rc));
	return rc;
}

static void verify(struct demo *d, const struct client_req *q)
{
	uint64_t g = *(const uint64_t *)q->user;
	for (uint32_t i = 0; i < q->npages; i++, d->verified++) {
		size_t bad = pattern_check((const uint8_t *)q->buf + (size_t)i * BENCH_PAGE,
					   d->seed + g + i);
		if (!bad)
			continue;
		if (d->mismatches++ < SHOW_MISMATCHES)
			fprintf(stderr, "mismatch: extent %llu page %u: %zu of 512 words wrong\n",
				(unsigned long long)q->extent, q->page + i, bad);
	}
}

static int demo_complete(void *ctx, int *slots, int max)
{
	struct demo *d = ctx;
	struct client_req *done[DEMO_DEPTH];
	int n = client_reap(d->c, done, max, 1);
	if (n <= 0) {
		fprintf(stderr, "spillway-bench demo: waiting for replies: %s\n",
			strerror(n ? -n : EIO));
		return n ? n : -EIO;
	}
	for (int i = 0; i < n; i++) {
		struct client_req *q = done[i];
		if (q->status) {
			fprintf(stderr, "spillway-bench demo: %s extent %llu page %u: %s\n",
				q->op == SPILL_OP_READ ? "READ" : "WRITE",
				(unsigned long long)q->extent, q->page, strerror(-q->status));
			return q->status;
		}
		if (q->op == SPILL_OP_READ)
			verify(d, q);
		slots[i] = (int)((uint64_t *)q->user - d->first);
	}
	return n;
}

/* One pass over all pages; prints its throughput line. */
static int pass(struct demo *d, uint16_t op)
{
	d->op = op;
	struct run_plan p = { .ops = d->npages / d->bp, .depth = DEMO_DEPTH,
			      .bytes_per_op = (uint64_t)d->bp * BENCH_PAGE };
	struct driver drv = { d, demo_submit, demo_complete };
	struct result r;
	int rc = run_pipelined(&drv, &p, &r);
	if (rc)
		return rc;
	printf("%-6s %.1f MiB in %.2f s: %.0f MB/s (per %u-page request: p50 %.0f us, p99 %.0f us)\n",
	       op == SPILL_OP_WRITE ? "wrote" : "read", (double)(d->npages * BENCH_PAGE) / (1 << 20),
	       r.seconds, result_mb_per_s(&r), d->bp, r.p50_us, r.p99_us);
	return 0;
}

static int alloc_extents(struct demo *d)
{
	uint64_t ext_bytes = client_extent_bytes(d->c);
	if (ext_bytes < BENCH_PAGE)
		return -EPROTO;
	d->nextents = (unsigned)((d->npages * BENCH_PAGE + ext_bytes - 1) / ext_bytes);
	d->ext = calloc(d->nextents, sizeof(*d->ext));
	if (!d->ext)
		return -ENOMEM;
	for (unsigned done = 0; done < d->nextents;) {
		unsigned n = d->nextents - done < CTRL_ALLOC_MAX ? d->nextents - done : CTRL_ALLOC_MAX;
		int rc = client_alloc_extents(d->c, n, -1, d->ext + done);
		if (rc) {
			fprintf(stderr, "spillway-bench demo: allocating %u extents: %s\n", d->nextents,
				strerror(-rc));
			d->nextents = done;
			return rc;
		}
		done += n;
	}
	d->ext_pages = d->ext[0].npages;
	d->bp = d->ext_pages < DEMO_BATCH ? d->ext_pages : DEMO_BATCH;
	return 0;
}

static void free_extents(struct demo *d)
{
	uint64_t ids[CTRL_ALLOC_MAX];
	for (unsigned done = 0; done < d->nextents;) {
		unsigned n = 0;
		while (n < CTRL_ALLOC_MAX && done + n < d->nextents) {
			ids[n] = d->ext[done + n].id;
			n++;
		}
		if (client_free_extents(d->c, ids, n))
			break;
		done += n;
	}
}

static int show_status(const struct demo_cfg *cfg, const char *url)
{
	char path[PATH_MAX];
	spawn_find_tool("spillctl", "SPILLCTL", path, sizeof(path));
	char *argv[8] = { path, "--server", (char *)url };
	int argc = 3;
	if (cfg->psk_file) {
		argv[argc++] = "--psk-file";
		argv[argc++] = (char *)cfg->psk_file;
	}
	argv[argc++] = "status";
	argv[argc] = NULL;
	printf("\n$ spillctl --server %s%s%s status\n", url, cfg->psk_file ? " --psk-file " : "",
	       cfg->psk_file ? cfg->psk_file : "");
	int rc = spawn_run(argv, 30000);
	if (rc) {
		fprintf(stderr, "spillway-bench demo: %s %s\n", path,
			rc < 0 ? strerror(-rc) : rc == 127 ? "could not be run" : "failed");
		return -EIO;
	}
	printf("\n");
	return 0;
}

/* Connect, write, read back, show status. The caller handles the server. */
static int run_demo(const struct demo_cfg *cfg, const char *url)
{
	struct auth_psk psk;
	struct client_opts o = { .name = "spillway-demo", .timeout_ms = 10000 };
	if (cfg->psk_file) {
		int rc = auth_psk_load(cfg->psk_file, &psk);
		if (rc) {
			fprintf(stderr, "spillway-bench demo: %s: %s\n", cfg->psk_file,
				rc == -EPERM ? "readable by group or others (chmod 600)"
				: rc == -EINVAL ? "key must be at least 16 bytes" : strerror(-rc));
			return rc;
		}
		o.psk = &psk;
	}
	struct demo d = { .npages = cfg->size / BENCH_PAGE };
	char err[256];
	int rc = client_connect(url, &o, &d.c, err, sizeof(err));
	if (rc) {
		fprintf(stderr, "spillway-bench demo: %s: %s\n", url, err);
		return rc;
	}
	d.bufs = malloc((size_t)DEMO_DEPTH * DEMO_BATCH * BENCH_PAGE);
	rc = d.bufs ? auth_random(&d.seed, sizeof(d.seed)) : -ENOMEM;
	if (!rc)
		rc = alloc_extents(&d);
	if (!rc) {
		printf("spillway-bench demo: %.1f MiB of random 4 KiB pages to %s "
		       "(%u extents, %u-page requests, %d in flight)\n",
		       (double)cfg->size / (1 << 20), url, d.nextents, d.bp, DEMO_DEPTH);
		rc = pass(&d, SPILL_OP_WRITE);
	}
	if (!rc)
		rc = pass(&d, SPILL_OP_READ);
	if (!rc) {
		printf("verified %llu pages byte for byte: %llu mismatches\n",
		       (unsigned long long)d.verified, (unsigned long long)d.mismatches);
		if (d.mismatches) {
			fprintf(stderr, "spillway-bench demo: %llu of %llu pages read back wrong%s\n",
				(unsigned long long)d.mismatches, (unsigned long long)d.verified,
				d.mismatches > SHOW_MISMATCHES ? " (first few shown above)" : "");
			rc = -EIO;
		}
	}
	if (!rc)
		rc = show_status(cfg, url);
	if (client_inflight(d.c) == 0)
		free_extents(&d);
	client_close(d.c);
	free(d.ext);
	free(d.bufs);
	if (!rc)
		printf("freed %u extents and disconnected\n", d.nextents);
	return rc;
}

static int spawn_server(const struct demo_cfg *cfg, struct proc *p, char *url, size_t cap)
{
	uint64_t mib = (cfg->size + HEADROOM + (2u << 20) - 1) / (2u << 20) * 2;
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
	rc = run_demo(&cfg, url);
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
