/* SPDX-License-Identifier: MIT */
/* Client A cannot read, write, invalidate or free client B's extents. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "harness.h"

static struct srv server;

static void other_clients_extent_is_untouchable(void **state)
{
	(void)state;
	struct client *a = connect_as(&server, "tenant-a", NULL);
	struct client *b = connect_as(&server, "tenant-b", NULL);
	struct client_extent eb;
	assert_int_equal(client_alloc_extents(b, 1, -1, &eb), 0);
	uint8_t page[SPILL_PAGE_SIZE], got[SPILL_PAGE_SIZE];
	fill_page(page, 42);
	assert_int_equal(client_write(b, eb.id, 3, 1, page), 0);

	uint8_t evil[SPILL_PAGE_SIZE];
	memset(evil, 0x66, sizeof(evil));
	assert_int_equal(client_read(a, eb.id, 3, 1, got, NULL), -ENOENT);
	assert_int_equal(client_write(a, eb.id, 3, 1, evil), -ENOENT);
	assert_int_equal(client_invalidate(a, eb.id, 3, 1), -ENOENT);
	uint64_t id = eb.id;
	assert_int_equal(client_free_extents(a, &id, 1), 0); /* skipped, not freed */

	/* B's page is exactly as B wrote it, and B still owns the extent. */
	assert_int_equal(client_read(b, eb.id, 3, 1, got, NULL), 0);
	assert_true(check_page(got, 42));
	assert_int_equal(srv_metric(&server, "spillway_errors_total{kind=\"not_owned\"}"), 3);

	/* A's refused requests left its own connection usable. */
	struct client_extent ea;
	assert_int_equal(client_alloc_extents(a, 1, -1, &ea), 0);
	assert_int_equal(client_write(a, ea.id, 0, 1, page), 0);
	client_close(a);
	client_close(b);
}

static void identity_cannot_be_taken_over_without_its_token(void **state)
{
	(void)state;
	struct client *owner = connect_as(&server, "owned-name", NULL);
	struct client_opts o = { .name = "owned-name", .timeout_ms = 5000 };
	struct client *thief = NULL;
	char err[256];
	assert_int_equal(client_connect(server.url, &o, &thief, err, sizeof(err)), -EBUSY);
	assert_null(thief);
	assert_non_null(strstr(err, "in use"));
	uint8_t forged[CTRL_TOKEN_BYTES] = { 1, 2, 3 };
	o.token = forged;
	assert_int_equal(client_connect(server.url, &o, &thief, err, sizeof(err)), -EBUSY);
	/* With the real token a second connection joins the same identity. */
	o.token = client_token(owner);
	struct client *second;
	assert_int_equal(client_connect(server.url, &o, &second, err, sizeof(err)), 0);
	assert_int_equal(client_id(second), client_id(owner));
	client_close(second);
	client_close(owner);
}

static void data_ops_need_registration(void **state)
{
	(void)state;
	struct client *admin = connect_as(&server, NULL, NULL);
	uint8_t page[SPILL_PAGE_SIZE] = { 0 };
	assert_int_equal(client_write(admin, 1, 0, 1, page), -ENOTCONN);
	assert_int_equal(client_ping(admin), 0);
	struct client_extent e;
	assert_int_equal(client_alloc_extents(admin, 1, -1, &e), -ENOTCONN);
	client_close(admin);
}

static int setup(void **state)
{
	(void)state;
	return srv_start(&server, "--capacity", "64M", NULL);
}

static int teardown(void **state)
{
	(void)state;
	return srv_stop(&server) == 0 ? 0 : -1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(other_clients_extent_is_untouchable),
		cmocka_unit_test(identity_cannot_be_taken_over_without_its_token),
		cmocka_unit_test(data_ops_need_registration),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
