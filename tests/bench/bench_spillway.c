/* SPDX-License-Identifier: MIT */
/*
 * spillwayd through the core client library: single pages and 2 MiB batches.
 * The client keeps a mirror of every page it wrote; WRITEs send straight from
 * it and READs check three words of each page against it, so a server that
 * returned wrong or stale data could not pass for a fast one.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "client.h"

struct sw_bench {
	struct client *c;
	struct client_extent *ext;
	uint32_t ext_pages;
	uint64_t npages;
	uint8_t *mirror;
};

struct sw_run {
	struct sw_bench *b;
	uint16_t op, npages;
	uint64_t units;            /* npages-sized units in the working set */
	struct client_req req[BENCH_MAX_DEPTH];
	uint64_t first[BENCH_MAX_DEPTH]; /* first global page of each slot */
	uint8_t *bufs;             /* READ destinations, one per slot */
};

/* Units are visited in a scrambled order: an odd multiplier permutes a
 * power-of-two range. */
static uint64_t unit_of(const struct sw_run *r, uint64_t seq)
{
	return (seq * 0x9e3779b1u) & (r->units - 1);
}

static const char *op_name(uint16_t op)
{
	return op == SPILL_OP_READ ? "READ" : "WRITE";
}

static int sw_submit(void *ctx, int slot, uint64_t seq)
{
	struct sw_run *r = ctx;
	struct sw_bench *b = r->b;
	uint64_t g = unit_of(r, seq) * r->npages;
	size_t bytes = (size_t)r->npages * BENCH_PAGE;
	struct client_req *q = &r->req[slot];
	*q = (struct client_req){
		.op = r->op, .extent = b->ext[g / b->ext_pages].id,
		.page = (uint32_t)(g % b->ext_pages), .npages = r->npages,
		.buf = r->op == SPILL_OP_WRITE ? b->mirror + g * BENCH_PAGE
					       : r->bufs + (size_t)slot * bytes,
		.user = &r->first[slot],
	};
	r->first[slot] = g;
	int rc = client_submit(b->c, q);
	if (rc)
		fprintf(stderr, "spillway-bench: submit %s: %s\n", op_name(r->op), strerror(-rc));
	return rc;
}

static int check_read(const struct sw_run *r, const struct client_req *q)
{
	uint64_t g = *(const uint64_t *)q->user;
	for (unsigned i = 0; i < q->npages; i++)
		if (sample_differs((const uint8_t *)q->buf + (size_t)i * BENCH_PAGE,
				   r->b->mirror + (g + i) * BENCH_PAGE)) {
			fprintf(stderr, "spillway-bench: READ extent %llu page %u returned wrong data\n",
				(unsigned long long)q->extent, q->page + i);
			return -EIO;
		}
	return 0;
}

static int sw_complete(void *ctx, int *slots, int max)
{
	struct sw_run *r = ctx;
	struct client_req *done[BENCH_MAX_DEPTH];
	int n = client_reap(r->b->c, done, max, 1);
	if (n < 0)
		fprintf(stderr, "spillway-bench: reap: %s\n", strerror(-n));
	if (n <= 0)
		return n < 0 ? n : -EIO;
	for (int i = 0; i < n; i++) {
		struct client_req *q = done[i];
		if (q->status) {
			fprintf(stderr, "spillway-bench: %s extent %llu page %u x%u: %s\n",
				op_name(q->op), (unsigned long long)q->extent, q->page, q->npages,
				strerror(-q->status));
			return q->status;
		}
		if (q->op == SPILL_OP_READ && check_read(r, q))
			return -EIO;
		slots[i] = (int)((uint64_t *)q->user - r->first);
	}
	return n;
}

/* Let requests still in flight after a failure finish before their buffers go. */
static void drain(struct sw_bench *b)
{
	struct client_req *done[BENCH_MAX_DEPTH];
	while (client_inflight(b->c) > 0 && client_reap(b->c, done, BENCH_MAX_DEPTH, 1) > 0)
		;
}

int sw_measure(struct sw_bench *b, uint16_t op, uint16_t npages, const struct run_plan *p,
	       struct result *out)
{
	if (npages == 0 || b->ext_pages % npages || p->depth > BENCH_MAX_DEPTH)
		return -EINVAL;
	struct sw_run r = { .b = b, .op = op, .npages = npages, .units = b->npages / npages };
	if (op == SPILL_OP_READ) {
		r.bufs = malloc((size_t)p->depth * npages * BENCH_PAGE);
		if (!r.bufs)
			return -ENOMEM;
	}
	struct driver d = { &r, sw_submit, sw_complete };
	int rc = run_pipelined(&d, p, out);
	if (rc)
		drain(b);
	free(r.bufs);
	return rc;
}

static int alloc_all(struct sw_bench *b, unsigned nextents)
{
	for (unsigned done = 0; done < nextents;) {
		unsigned n = nextents - done < CTRL_ALLOC_MAX ? nextents - done : CTRL_ALLOC_MAX;
		int rc = client_alloc_extents(b->c, n, -1, b->ext + done);
		if (rc) {
			fprintf(stderr, "spillway-bench: allocating extents: %s\n", strerror(-rc));
			return rc;
		}
		done += n;
	}
	b->ext_pages = b->ext[0].npages;
	for (unsigned i = 1; i < nextents; i++)
		if (b->ext[i].npages != b->ext_pages)
			return -EPROTO;
	if (b->ext_pages % BENCH_BATCH)
		return -EINVAL; /* 2 MiB batches need whole 2 MiB extents */
	b->npages = (uint64_t)nextents * b->ext_pages;
	return 0;
}

/* Fill the mirror and write all of it, so every later READ finds its page. */
static int prewrite(struct sw_bench *b)
{
	b->mirror = malloc(b->npages * BENCH_PAGE);
	if (!b->mirror)
		return -ENOMEM;
	for (uint64_t g = 0; g < b->npages; g++)
		pattern_fill(b->mirror + g * BENCH_PAGE, g);
	struct run_plan p = { .ops = b->npages / BENCH_BATCH, .depth = 4,
			      .bytes_per_op = BENCH_BATCH * BENCH_PAGE };
	struct result ignored;
	return sw_measure(b, SPILL_OP_WRITE, BENCH_BATCH, &p, &ignored);
}

int sw_open(const char *url, unsigned nextents, struct sw_bench **out)
{
	if (nextents == 0 || (nextents & (nextents - 1)))
		return -EINVAL;
	struct sw_bench *b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->ext = calloc(nextents, sizeof(*b->ext));
	char err[256];
	struct client_opts o = { .name = "spillway-bench", .timeout_ms = 10000 };
	int rc = b->ext ? client_connect(url, &o, &b->c, err, sizeof(err)) : -ENOMEM;
	if (rc)
		fprintf(stderr, "spillway-bench: %s: %s\n", url, b->ext ? err : strerror(-rc));
	if (!rc)
		rc = alloc_all(b, nextents);
	if (!rc)
		rc = prewrite(b);
	if (rc) {
		sw_close(b);
		return rc;
	}
	*out = b;
	return 0;
}

void sw_close(struct sw_bench *b)
{
	if (!b)
		return;
	client_close(b->c);
	free(b->ext);
	free(b->mirror);
	free(b);
}
