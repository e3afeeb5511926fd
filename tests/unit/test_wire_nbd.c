/* SPDX-License-Identifier: MIT */
/*
 * NBD exports on the wire (server/wire/wire_nbd.c): struct nbd_export_info
 * survives an AdminExportListReply and an AdminExportCreateReply through
 * protobuf encode and decode, every field intact, with names of the
 * longest length and control characters in them, and fields at the top of
 * their types.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "test_wire.h"
#include "wire_nbd.h"

static struct nbd_export_info info_max(void)
{
	struct nbd_export_info x = {
		.size_bytes = UINT64_MAX, .used_bytes = UINT64_MAX - 1, .connections = UINT32_MAX,
	};
	for (size_t i = 0; i < CTRL_EXPORT_NAME_MAX; i++)
		x.name[i] = (char)(1 + i % 31); /* every control character but NUL */
	for (size_t i = 0; i < CTRL_NAME_MAX; i++)
		x.client[i] = i % 2 ? '\x1b' : (char)('a' + i % 26);
	return x;
}

static struct nbd_export_info info_small(const char *name)
{
	struct nbd_export_info x = { .size_bytes = 1 << 20, .used_bytes = 4096, .connections = 2 };
	strcpy(x.name, name);
	strcpy(x.client, "nbd:");
	strcat(x.client, name);
	return x;
}

static void check_info(const Spillway__ExportInfo *got, const struct nbd_export_info *want)
{
	assert_non_null(got);
	assert_string_equal(got->name, want->name);
	assert_string_equal(got->client, want->client);
	assert_true(got->size_bytes == want->size_bytes);
	assert_true(got->used_bytes == want->used_bytes);
	assert_true(got->connections == want->connections);
}

static void test_export_list(void **state)
{
	(void)state;
	struct nbd_export_info in[] = { info_small("a"), info_max(), info_small("z.z") };
	for (size_t n = 0; n <= 3; n += 3) {
		Spillway__AdminExportListReply r = SPILLWAY__ADMIN_EXPORT_LIST_REPLY__INIT;
		r.exports = wire_nbd_export_list(in, n);
		assert_non_null(r.exports);
		r.n_exports = n;
		Spillway__Ctrl *back = wire_round_trip(SPILLWAY__CTRL__MSG_ADMIN_EXPORT_LIST_REPLY, &r);
		free(r.exports);
		assert_int_equal(back->admin_export_list_reply->n_exports, n);
		for (size_t i = 0; i < n; i++)
			check_info(back->admin_export_list_reply->exports[i], &in[i]);
		spillway__ctrl__free_unpacked(back, NULL);
	}
}

static void test_export_create_reply(void **state)
{
	(void)state;
	struct nbd_export_info x = info_max();
	Spillway__ExportInfo msg;
	wire_nbd_export(&x, &msg);
	Spillway__AdminExportCreateReply r = SPILLWAY__ADMIN_EXPORT_CREATE_REPLY__INIT;
	r.info = &msg;
	Spillway__Ctrl *back = wire_round_trip(SPILLWAY__CTRL__MSG_ADMIN_EXPORT_CREATE_REPLY, &r);
	check_info(back->admin_export_create_reply->info, &x);
	spillway__ctrl__free_unpacked(back, NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_export_list),
		cmocka_unit_test(test_export_create_reply),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
