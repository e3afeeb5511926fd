/* SPDX-License-Identifier: MIT */
/*
 * The registry's wire conversions (server/wire/wire_registry.c): a Register
 * request and ClientStats reports survive protobuf encode and decode with
 * every field intact, at the extremes of each field's type and with a name
 * of the longest length holding control characters (the wire module passes
 * names through; ctrl_validate is what refuses them). Values that a plain
 * struct cannot hold exactly are refused, never cut.
 *
 * Every record used has a different value in each field, so a conversion
 * that swaps two fields fails as surely as one that drops a field.
 */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "test_wire.h"
#include "wire_registry.h"

/* CTRL_NAME_MAX bytes, none of them NUL, many of them control characters. */
static void hostile_name(char *name)
{
	static const char pat[] = "\x01\x1b[2J\x1b]0;x\x07\t\r\n\x7f\x9b" "ab:.-_";
	for (size_t i = 0; i < CTRL_NAME_MAX; i++)
		name[i] = pat[i % (sizeof(pat) - 1)];
	name[CTRL_NAME_MAX] = '\0';
}

/* CTRL_NAME_MAX + 1 bytes: one more than any plain struct holds. */
static char *too_long_name(void)
{
	static char name[CTRL_NAME_MAX + 2];
	memset(name, 'q', CTRL_NAME_MAX + 1);
	return name;
}

/* ---- Register ------------------------------------------------------------ */

static void check_request(const Spillway__Register *sent, const struct reg_request *got)
{
	assert_int_equal(strlen(got->name), strlen(sent->name));
	assert_memory_equal(got->name, sent->name, strlen(sent->name) + 1);
	assert_int_equal(got->priority, sent->priority);
	assert_true(got->reservation == sent->reservation_bytes);
	assert_true(got->limit == sent->limit_bytes);
	assert_int_equal(got->has_token, sent->token.len != 0);
	if (sent->token.len)
		assert_memory_equal(got->token, sent->token.data, CTRL_TOKEN_BYTES);
}

static struct reg_request register_round_trip(Spillway__Register *r, int *rc)
{
	Spillway__Ctrl *back = wire_round_trip(SPILLWAY__CTRL__MSG_REGISTER, r);
	struct reg_request got;
	memset(&got, 0x5a, sizeof(got)); /* nothing left over passes for a value */
	*rc = wire_registry_request(back->register_, &got);
	spillway__ctrl__free_unpacked(back, NULL);
	return got;
}

static void test_register_extremes(void **state)
{
	(void)state;
	char name[CTRL_NAME_MAX + 1];
	hostile_name(name);
	uint8_t token[CTRL_TOKEN_BYTES];
	for (int i = 0; i < CTRL_TOKEN_BYTES; i++)
		token[i] = (uint8_t)(i ? 0xff - i : 0); /* a NUL byte first */
	const int32_t prio[] = { INT32_MIN, INT32_MAX };
	for (int k = 0; k < 2; k++) {
		Spillway__Register r = SPILLWAY__REGISTER__INIT;
		r.name = name;
		r.priority = prio[k];
		r.reservation_bytes = k ? UINT64_MAX : UINT64_MAX - 1;
		r.limit_bytes = k ? UINT64_MAX - 2 : UINT64_MAX;
		r.token.data = token;
		r.token.len = sizeof(token);
		int rc;
		struct reg_request got = register_round_trip(&r, &rc);
		assert_int_equal(rc, 0);
		check_request(&r, &got);
	}
}

static void test_register_new_identity(void **state)
{
	(void)state;
	Spillway__Register r = SPILLWAY__REGISTER__INIT;
	r.name = "n";
	r.priority = -7;
	r.reservation_bytes = 4096;
	r.limit_bytes = 8192;
	int rc;
	struct reg_request got = register_round_trip(&r, &rc);
	assert_int_equal(rc, 0);
	check_request(&r, &got);
	assert_int_equal(got.has_token, 0);
}

static void test_register_refuses_what_does_not_fit(void **state)
{
	(void)state;
	Spillway__Register r = SPILLWAY__REGISTER__INIT;
	r.name = too_long_name();
	int rc;
	register_round_trip(&r, &rc);
	assert_int_equal(rc, -EPROTO);

	uint8_t token[CTRL_TOKEN_BYTES + 1] = { 0 };
	r.name = "ok";
	r.token.data = token;
	for (size_t len = 1; len <= sizeof(token); len++) {
		if (len == CTRL_TOKEN_BYTES)
			continue;
		r.token.len = len;
		register_round_trip(&r, &rc);
		assert_int_equal(rc, -EPROTO);
	}
}

/* ---- ClientStats --------------------------------------------------------- */

/* Every field at the top of its type (priority: the bottom, seed 0). */
static struct reg_client_stats stats_max(int seed)
{
	struct reg_client_stats s = {
		.client_id = UINT64_MAX,
		.priority = seed ? INT32_MAX : INT32_MIN,
		.reservation = UINT64_MAX,
		.limit = UINT64_MAX,
		.used = UINT64_MAX,
		.pinned = UINT64_MAX,
		.extents = UINT32_MAX,
		.connections = UINT32_MAX,
		.grace_left_ms = UINT64_MAX,
		.pages_read = UINT64_MAX,
		.pages_written = UINT64_MAX,
		.last_reclaim_id = UINT64_MAX,
		.last_reclaim_freed = UINT64_MAX,
	};
	hostile_name(s.name);
	return s;
}

/* Every field different, large enough to need every varint byte it has. */
static struct reg_client_stats stats_distinct(const char *name)
{
	struct reg_client_stats s = {
		.client_id = UINT64_C(0x8101020304050607),
		.priority = -1000,
		.reservation = UINT64_C(0x8111121314151617),
		.limit = UINT64_C(0x8121222324252627),
		.used = UINT64_C(0x8131323334353637),
		.pinned = UINT64_C(0x8141424344454647),
		.extents = UINT32_C(0x81515253),
		.connections = UINT32_C(0x81616263),
		.grace_left_ms = UINT64_C(0x8171727374757677),
		.pages_read = UINT64_C(0x8181828384858687),
		.pages_written = UINT64_C(0x8191929394959697),
		.last_reclaim_id = UINT64_C(0x81a1a2a3a4a5a6a7),
		.last_reclaim_freed = UINT64_C(0x81b1b2b3b4b5b6b7),
	};
	strcpy(s.name, name);
	return s;
}

static void check_stats(const struct reg_client_stats *a, const struct reg_client_stats *b)
{
	assert_int_equal(strlen(a->name), strlen(b->name));
	assert_memory_equal(a->name, b->name, strlen(b->name) + 1);
	assert_true(a->client_id == b->client_id);
	assert_int_equal(a->priority, b->priority);
	assert_true(a->reservation == b->reservation);
	assert_true(a->limit == b->limit);
	assert_true(a->used == b->used);
	assert_true(a->pinned == b->pinned);
	assert_true(a->extents == b->extents);
	assert_true(a->connections == b->connections);
	assert_true(a->grace_left_ms == b->grace_left_ms);
	assert_true(a->pages_read == b->pages_read);
	assert_true(a->pages_written == b->pages_written);
	assert_true(a->last_reclaim_id == b->last_reclaim_id);
	assert_true(a->last_reclaim_freed == b->last_reclaim_freed);
}

/* Through StatsReply.self: one record, as on_stats sends it. */
static void test_stats_one(void **state)
{
	(void)state;
	struct reg_client_stats in[] = { stats_max(0), stats_max(1), stats_distinct("x:y-z_0") };
	for (size_t i = 0; i < sizeof(in) / sizeof(in[0]); i++) {
		Spillway__ClientStats msg;
		wire_registry_stats(&in[i], &msg);
		Spillway__StatsReply r = SPILLWAY__STATS_REPLY__INIT;
		r.self = &msg;
		Spillway__Ctrl *back = wire_round_trip(SPILLWAY__CTRL__MSG_STATS_REPLY, &r);
		struct reg_client_stats got;
		memset(&got, 0x5a, sizeof(got));
		assert_int_equal(wire_registry_stats_from(back->stats_reply->self, &got), 0);
		check_stats(&got, &in[i]);
		spillway__ctrl__free_unpacked(back, NULL);
	}
}

/* Through AdminStatusReply.clients: a page, in order, and an empty one. */
static void test_stats_list(void **state)
{
	(void)state;
	struct reg_client_stats in[] = { stats_distinct("a"), stats_max(0), stats_distinct("b.c") };
	in[2].client_id = 2; /* so a mixed-up order shows */
	for (size_t n = 0; n <= 3; n += 3) {
		Spillway__AdminStatusReply r = SPILLWAY__ADMIN_STATUS_REPLY__INIT;
		r.clients = wire_registry_stats_list(in, n);
		assert_non_null(r.clients); /* also for n == 0: NULL means no memory */
		r.n_clients = n;
		Spillway__Ctrl *back = wire_round_trip(SPILLWAY__CTRL__MSG_ADMIN_STATUS_REPLY, &r);
		free(r.clients);
		assert_int_equal(back->admin_status_reply->n_clients, n);
		for (size_t i = 0; i < n; i++) {
			struct reg_client_stats got;
			assert_int_equal(
				wire_registry_stats_from(back->admin_status_reply->clients[i], &got), 0);
			check_stats(&got, &in[i]);
		}
		spillway__ctrl__free_unpacked(back, NULL);
	}
}

/* A peer's report with a name too long for the registry: refused whole. */
static void test_stats_refuses_long_name(void **state)
{
	(void)state;
	Spillway__ClientStats m = SPILLWAY__CLIENT_STATS__INIT;
	m.name = too_long_name();
	struct reg_client_stats got;
	assert_int_equal(wire_registry_stats_from(&m, &got), -EPROTO);
}

/* ---- ExtentInfo ------------------------------------------------------------ */

static void test_extents(void **state)
{
	(void)state;
	const struct reg_extent_info in[] = {
		{ UINT64_MAX, UINT32_MAX, UINT32_MAX }, { 1, 2, 3 }, { UINT64_C(1) << 63, 512, 0 },
	};
	enum { N = sizeof(in) / sizeof(in[0]) };
	Spillway__ExtentInfo store[N], *ptrs[N];
	wire_registry_extents(in, N, store, ptrs);
	Spillway__AllocExtentReply r = SPILLWAY__ALLOC_EXTENT_REPLY__INIT;
	r.extents = ptrs;
	r.n_extents = N;
	Spillway__Ctrl *back = wire_round_trip(SPILLWAY__CTRL__MSG_ALLOC_EXTENT_REPLY, &r);
	assert_int_equal(back->alloc_extent_reply->n_extents, N);
	for (size_t i = 0; i < N; i++) {
		const Spillway__ExtentInfo *e = back->alloc_extent_reply->extents[i];
		assert_true(e->extent_id == in[i].id);
		assert_true(e->npages == in[i].npages);
		assert_true(e->node == in[i].node);
	}
	spillway__ctrl__free_unpacked(back, NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_register_extremes),
		cmocka_unit_test(test_register_new_identity),
		cmocka_unit_test(test_register_refuses_what_does_not_fit),
		cmocka_unit_test(test_stats_one),
		cmocka_unit_test(test_stats_list),
		cmocka_unit_test(test_stats_refuses_long_name),
		cmocka_unit_test(test_extents),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
