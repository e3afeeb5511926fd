/* SPDX-License-Identifier: MIT */
/*
 * Pages written are read back byte for byte, by several clients at once, in
 * batches of 1 to 512 pages; invalidated and never-written pages are reported
 * absent and never come back as stale bytes.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "harness.h"

static struct srv server;

#define CLIENTS 4
#define EXTENTS_PER_CLIENT 6
#define PAGES_PER_EXTENT 512

struct worker_arg {
	int index;
	int errors;
	unsigned long verified;
};

/* Seed of page (extent slot e, page p) at a given generation, per client. */
static uint64_t seed_of(int client, int e, uint32_t p, int gen)
{
	return ((uint64_t)client << 48) ^ ((uint64_t)e << 32) ^ ((uint64_t)gen << 24) ^ p;
}

static void *client_worker(void *arg)
{
	struct worker_arg *w = arg;
	char name[32];
	snprintf(name, sizeof(name), "data-%d", w->index);
	struct client_opts o = { .name = name, .timeout_ms = 20000 };
	struct client *c;
	if (client_connect(server.url, &o, &c, NULL, 0)) {
		w->errors++;
		return NULL;
	}
	struct client_extent ext[EXTENTS_PER_CLIENT];
	if (client_alloc_extents(c, EXTENTS_PER_CLIENT, -1, ext)) {
		w->errors++;
		client_close(c);
		return NULL;
	}
	uint8_t *buf = aligned_alloc(4096, (size_t)SPILL_MAX_BATCH_PAGES * SPILL_PAGE_SIZE);
	int gen[EXTENTS_PER_CLIENT][PAGES_PER_EXTENT];
	memset(gen, 0, sizeof(gen));
	unsigned rnd = 1234u + (unsigned)w->index;

	/* Random batches at random places, each written twice over time. */
	for (int round = 0; round < 400; round++) {
		int e = rand_r(&rnd) % EXTENTS_PER_CLIENT;
		uint32_t n = 1 + (uint32_t)(rand_r(&rnd) % (round % 10 == 0 ? 512 : 16));
		uint32_t p = (uint32_t)(rand_r(&rnd) % (PAGES_PER_EXTENT - n + 1));
		for (uint32_t i = 0; i < n; i++) {
			gen[e][p + i]++;
			fill_page(buf + (size_t)i * SPILL_PAGE_SIZE,
				  seed_of(w->index, e, p + i, gen[e][p + i]));
		}
		if (client_write(c, ext[e].id, p, (uint16_t)n, buf))
			w->errors++;
	}
	/* Read back every written page, whole extents at a time. */
	uint8_t present[SPILL_PRESENT_MAP_BYTES];
	for (int e = 0; e < EXTENTS_PER_CLIENT; e++) {
		int rc = client_read(c, ext[e].id, 0, PAGES_PER_EXTENT, buf, present);
		for (uint32_t p = 0; p < PAGES_PER_EXTENT; p++) {
			int is_present = rc == 0 || (present[p / 8] >> (p % 8)) & 1;
			if (gen[e][p] == 0) {
				/* Never written: absent, and zeros on the wire. */
				static const uint8_t zero[SPILL_PAGE_SIZE];
				if (is_present || memcmp(buf + (size_t)p * SPILL_PAGE_SIZE, zero, SPILL_PAGE_SIZE))
					w->errors++;
				continue;
			}
			if (!is_present || !check_page(buf + (size_t)p * SPILL_PAGE_SIZE,
							 seed_of(w->index, e, p, gen[e][p])))
				w->errors++;
			else
				w->verified++;
		}
	}
	free(buf);
	client_close(c);
	return NULL;
}

static void several_clients_read_back_what_they_wrote(void **state)
{
	(void)state;
	pthread_t th[CLIENTS];
	struct worker_arg args[CLIENTS];
	for (int i = 0; i < CLIENTS; i++) {
		args[i] = (struct worker_arg){ .index = i };
		pthread_create(&th[i], NULL, client_worker, &args[i]);
	}
	unsigned long verified = 0;
	for (int i = 0; i < CLIENTS; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(args[i].errors, 0);
		verified += args[i].verified;
	}
	assert_true(verified > 1000);
	print_message("verified %lu pages across %d clients\n", verified, CLIENTS);
}

static void invalidate_reports_absent_never_stale(void **state)
{
	(void)state;
	struct client *c = connect_as(&server, "inval", NULL);
	struct client_extent e;
	assert_int_equal(client_alloc_extents(c, 1, -1, &e), 0);
	uint8_t *buf = malloc(8 * SPILL_PAGE_SIZE);
	for (int i = 0; i < 8; i++)
		fill_page(buf + i * SPILL_PAGE_SIZE, 900 + (uint64_t)i);
	assert_int_equal(client_write(c, e.id, 10, 8, buf), 0);
	assert_int_equal(client_invalidate(c, e.id, 12, 2), 0);

	uint8_t present[SPILL_PRESENT_MAP_BYTES];
	memset(buf, 0xAB, 8 * SPILL_PAGE_SIZE);
	assert_int_equal(client_read(c, e.id, 10, 8, buf, present), -ENODATA);
	for (int i = 0; i < 8; i++) {
		int is_present = (present[i / 8] >> (i % 8)) & 1;
		if (i == 2 || i == 3) {
			assert_false(is_present);
			/* No stale bytes: the invalidated pages come back zeroed. */
			for (unsigned b = 0; b < SPILL_PAGE_SIZE; b++)
				assert_int_equal(buf[i * SPILL_PAGE_SIZE + b], 0);
		} else {
			assert_true(is_present);
			assert_true(check_page(buf + i * SPILL_PAGE_SIZE, 900 + (uint64_t)i));
		}
	}
	/* A single invalidated page read alone: absent, no map from a caller. */
	assert_int_equal(client_read(c, e.id, 12, 1, buf, NULL), -ENODATA);
	/* Rewriting makes it present again with the new bytes. */
	fill_page(buf, 77);
	assert_int_equal(client_write(c, e.id, 12, 1, buf), 0);
	memset(buf, 0, SPILL_PAGE_SIZE);
	assert_int_equal(client_read(c, e.id, 12, 1, buf, NULL), 0);
	assert_true(check_page(buf, 77));
	free(buf);
	client_close(c);
}

static void out_of_range_and_unknown_extents_are_refused(void **state)
{
	(void)state;
	struct client *c = connect_as(&server, "range", NULL);
	struct client_extent e;
	assert_int_equal(client_alloc_extents(c, 1, -1, &e), 0);
	uint8_t *buf = calloc(2, SPILL_PAGE_SIZE);
	assert_int_equal(client_write(c, e.id, e.npages - 1, 2, buf), -ERANGE);
	assert_int_equal(client_read(c, e.id, e.npages, 1, buf, NULL), -ERANGE);
	assert_int_equal(client_read(c, e.id + 100000, 0, 1, buf, NULL), -ENOENT);
	/* The connection still works after the refusals. */
	assert_int_equal(client_write(c, e.id, 0, 1, buf), 0);
	uint64_t id = e.id;
	assert_int_equal(client_free_extents(c, &id, 1), 0);
	assert_int_equal(client_read(c, id, 0, 1, buf, NULL), -ENOENT);
	free(buf);
	client_close(c);
}

static int run_op(struct client *c, struct client_req *r)
{
	struct client_req *done;
	if (client_submit(c, r) || client_reap(c, &done, 1, 1) != 1)
		return -EIO;
	return r->status;
}

/* The binary ALLOC/FREE ops (what the kernel module uses) allocate, account
 * and free exactly as AllocExtent/FreeExtent do. */
static void binary_alloc_and_free_ops_manage_extents(void **state)
{
	(void)state;
	struct client *c = connect_as(&server, "binary-ops", NULL);
	struct client *other = connect_as(&server, "binary-other", NULL);
	long long used0 = srv_metric(&server, "spillway_pool_used_bytes{node=\"0\"}");
	struct client_req a = { .op = SPILL_OP_ALLOC, .page = SPILL_NODE_ANY };
	assert_int_equal(run_op(c, &a), 0);
	assert_true(a.extent != 0);
	assert_true(srv_metric(&server, "spillway_pool_used_bytes{node=\"0\"}") > used0);
	uint8_t *buf = calloc(1, SPILL_PAGE_SIZE);
	memset(buf, 0x5a, SPILL_PAGE_SIZE);
	assert_int_equal(client_write(c, a.extent, 3, 1, buf), 0);
	/* Another client cannot free it. */
	struct client_req f = { .op = SPILL_OP_FREE, .extent = a.extent };
	assert_int_equal(run_op(other, &f), -ENOENT);
	memset(buf, 0, SPILL_PAGE_SIZE);
	assert_int_equal(client_read(c, a.extent, 3, 1, buf, NULL), 0);
	assert_int_equal(buf[100], 0x5a);
	f = (struct client_req){ .op = SPILL_OP_FREE, .extent = a.extent };
	assert_int_equal(run_op(c, &f), 0);
	assert_int_equal(srv_metric(&server, "spillway_pool_used_bytes{node=\"0\"}"), used0);
	assert_int_equal(client_read(c, a.extent, 3, 1, buf, NULL), -ENOENT);
	free(buf);
	client_close(other);
	client_close(c);
}

static void pipelined_requests_complete_out_of_submission_order_safely(void **state)
{
	(void)state;
	struct client *c = connect_as(&server, "pipeline", NULL);
	struct client_extent e;
	assert_int_equal(client_alloc_extents(c, 1, -1, &e), 0);
	enum { N = 256 };
	uint8_t *pages = malloc((size_t)N * SPILL_PAGE_SIZE);
	struct client_req reqs[N];
	for (int i = 0; i < N; i++) {
		fill_page(pages + (size_t)i * SPILL_PAGE_SIZE, 5000 + (uint64_t)i);
		reqs[i] = (struct client_req){ .op = SPILL_OP_WRITE, .extent = e.id,
					       .page = (uint32_t)i, .npages = 1,
					       .buf = pages + (size_t)i * SPILL_PAGE_SIZE };
		assert_int_equal(client_submit(c, &reqs[i]), 0);
	}
	struct client_req *done[N];
	int got = 0;
	while (got < N) {
		int n = client_reap(c, done + got, N - got, 1);
		assert_true(n > 0);
		got += n;
	}
	for (int i = 0; i < N; i++)
		assert_int_equal(reqs[i].status, 0);
	memset(pages, 0, (size_t)N * SPILL_PAGE_SIZE);
	for (int i = 0; i < N; i++) {
		reqs[i].op = SPILL_OP_READ;
		assert_int_equal(client_submit(c, &reqs[i]), 0);
	}
	for (got = 0; got < N;) {
		int n = client_reap(c, done + got, N - got, N - got);
		assert_true(n > 0);
		got += n;
	}
	for (int i = 0; i < N; i++) {
		assert_int_equal(reqs[i].status, 0);
		assert_true(check_page(pages + (size_t)i * SPILL_PAGE_SIZE, 5000 + (uint64_t)i));
	}
	assert_int_equal(client_ping(c), 0);
	free(pages);
	client_close(c);
}

/* Deep pipelines of large copied replies (ranges with an absent page are
 * queued by copy) must all complete: output draining below its bound has to
 * restart requests already read, even when the client sends nothing more. */
static void deep_pipeline_of_copied_batches_completes(void **state)
{
	(void)state;
	struct client_opts o = { .name = "deep", .timeout_ms = 20000, .window = 32 };
	struct client *c;
	assert_int_equal(client_connect(server.url, &o, &c, NULL, 0), 0);
	struct client_extent e;
	assert_int_equal(client_alloc_extents(c, 1, -1, &e), 0);
	uint8_t *src = calloc(SPILL_MAX_BATCH_PAGES, SPILL_PAGE_SIZE);
	assert_int_equal(client_write(c, e.id, 1, SPILL_MAX_BATCH_PAGES - 1, src), 0);
	free(src);
	/* All at once, then nothing more: the server reads every request in
	 * one go and must serve the ones it had to hold back on its own. */
	enum { DEPTH = 32, ROUNDS = 3 };
	uint8_t *bufs = malloc((size_t)DEPTH * SPILL_MAX_BATCH_PAGES * SPILL_PAGE_SIZE);
	struct client_req reqs[DEPTH], *done[DEPTH];
	for (int round = 0; round < ROUNDS; round++) {
		for (int i = 0; i < DEPTH; i++) {
			reqs[i] = (struct client_req){
				.op = SPILL_OP_READ, .extent = e.id, .npages = SPILL_MAX_BATCH_PAGES,
				.buf = bufs + (size_t)i * SPILL_MAX_BATCH_PAGES * SPILL_PAGE_SIZE };
			assert_int_equal(client_submit(c, &reqs[i]), 0);
		}
		int completed = 0;
		while (completed < DEPTH) {
			int n = client_reap(c, done, DEPTH, DEPTH - completed);
			assert_true(n > 0);
			for (int i = 0; i < n; i++)
				assert_int_equal(done[i]->status, -ENODATA); /* page 0 absent */
			completed += n;
		}
	}
	free(bufs);
	client_close(c);
}

static int setup(void **state)
{
	(void)state;
	return srv_start(&server, "--capacity", "128M", NULL);
}

static int teardown(void **state)
{
	(void)state;
	return srv_stop(&server) == 0 ? 0 : -1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(several_clients_read_back_what_they_wrote),
		cmocka_unit_test(invalidate_reports_absent_never_stale),
		cmocka_unit_test(out_of_range_and_unknown_extents_are_refused),
		cmocka_unit_test(binary_alloc_and_free_ops_manage_extents),
		cmocka_unit_test(pipelined_requests_complete_out_of_submission_order_safely),
		cmocka_unit_test(deep_pipeline_of_copied_batches_completes),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
