/* SPDX-License-Identifier: MIT */
/* 64 connections with 32 requests in flight each, a bounded number of ops,
 * zero errors and every page verified. */
#include <pthread.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "harness.h"

#define CONNS 64
#define INFLIGHT 32
#define OPS_PER_CONN 3000
#define PAGES 256 /* per connection, inside one extent */

static struct srv server;

struct load_arg {
	int index;
	int errors;
	long ops;
};

static void *load_worker(void *arg)
{
	struct load_arg *a = arg;
	char name[32];
	snprintf(name, sizeof(name), "load-%02d", a->index);
	struct client_opts o = { .name = name, .timeout_ms = 60000, .window = INFLIGHT };
	struct client *c;
	if (client_connect(server.url, &o, &c, NULL, 0)) {
		a->errors++;
		return NULL;
	}
	struct client_extent e;
	if (client_alloc_extents(c, 1, -1, &e)) {
		a->errors++;
		client_close(c);
		return NULL;
	}
	uint8_t *pages = malloc((size_t)INFLIGHT * SPILL_PAGE_SIZE);
	uint32_t *version = calloc(PAGES, sizeof(*version));
	struct client_req reqs[INFLIGHT], *done[INFLIGHT];
	int free_slots[INFLIGHT], nfree = INFLIGHT;
	for (int i = 0; i < INFLIGHT; i++)
		free_slots[i] = i;
	/* Pages are split among slots (page % INFLIGHT == slot), so no two
	 * requests in flight touch the same page. Even ops write, odd ops read
	 * back what the slot wrote last. */
	long submitted = 0;
	uint32_t next_page[INFLIGHT] = { 0 };
	while (a->ops < OPS_PER_CONN) {
		while (nfree && submitted < OPS_PER_CONN) {
			int slot = free_slots[--nfree];
			struct client_req *r = &reqs[slot];
			uint32_t page = (uint32_t)slot + INFLIGHT * (next_page[slot] % (PAGES / INFLIGHT));
			uint8_t *buf = pages + (size_t)slot * SPILL_PAGE_SIZE;
			int write = (submitted / INFLIGHT) % 2 == 0 || version[page] == 0;
			if (write) {
				version[page]++;
				fill_page(buf, ((uint64_t)a->index << 40) ^ ((uint64_t)page << 20) ^ version[page]);
			} else {
				next_page[slot]++;
			}
			*r = (struct client_req){ .op = write ? SPILL_OP_WRITE : SPILL_OP_READ,
						  .extent = e.id, .page = page, .npages = 1,
						  .buf = buf, .user = (void *)(intptr_t)slot };
			if (client_submit(c, r)) {
				a->errors++;
				goto out;
			}
			submitted++;
		}
		int n = client_reap(c, done, INFLIGHT, 1);
		if (n <= 0) {
			a->errors++;
			goto out;
		}
		for (int i = 0; i < n; i++) {
			struct client_req *r = done[i];
			if (r->status)
				a->errors++;
			if (r->op == SPILL_OP_READ &&
			    !check_page(r->buf, ((uint64_t)a->index << 40) ^ ((uint64_t)r->page << 20) ^
							version[r->page]))
				a->errors++;
			free_slots[nfree++] = (int)(intptr_t)r->user;
			a->ops++;
		}
	}
out:
	free(pages);
	free(version);
	client_close(c);
	return NULL;
}

static void sixty_four_connections_thirty_two_in_flight(void **state)
{
	(void)state;
	pthread_t th[CONNS];
	struct load_arg args[CONNS];
	for (int i = 0; i < CONNS; i++) {
		args[i] = (struct load_arg){ .index = i };
		assert_int_equal(pthread_create(&th[i], NULL, load_worker, &args[i]), 0);
	}
	long total = 0;
	int errors = 0;
	for (int i = 0; i < CONNS; i++) {
		pthread_join(th[i], NULL);
		errors += args[i].errors;
		total += args[i].ops;
	}
	print_message("%d connections, %ld ops, %d errors\n", CONNS, total, errors);
	assert_int_equal(errors, 0);
	assert_int_equal(total, (long)CONNS * OPS_PER_CONN);
	/* The server saw no error of any kind either. */
	static const char *const kinds[] = { "protocol", "crc", "auth", "not_owned", "no_extent",
					     "range", "pool_full", "over_limit", "inflight" };
	char series[96];
	for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
		snprintf(series, sizeof(series), "spillway_errors_total{kind=\"%s\"}", kinds[k]);
		assert_int_equal(srv_metric(&server, series), 0);
	}
	snprintf(series, sizeof(series), "spillway_ops_total{op=\"read\"}");
	assert_true(srv_metric(&server, series) > 0);
}

static int setup(void **state)
{
	(void)state;
	return srv_start(&server, "--capacity", "256M", NULL);
}

static int teardown(void **state)
{
	(void)state;
	return srv_stop(&server) == 0 ? 0 : -1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(sixty_four_connections_thirty_two_in_flight),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
