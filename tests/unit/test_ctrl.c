/* SPDX-License-Identifier: MIT */
/*
 * Control codec: every Ctrl message round-trips through ctrl_pack and
 * ctrl_unpack with its fields intact, and every semantic rule rejects.
 *
 * Rejection tests start from a message that is accepted, break one field,
 * and check ctrl_unpack (on the packed bytes) and ctrl_validate both refuse
 * it with -EPROTO and a reason, so a rule cannot appear to work because some
 * other rule fired.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ctrl.h"
#include "wire.h"

static uint8_t nonce_a[CTRL_NONCE_BYTES], nonce_b[CTRL_NONCE_BYTES];
static uint8_t mac[CTRL_MAC_BYTES], token[CTRL_TOKEN_BYTES + 1];

static int setup(void **state)
{
	(void)state;
	for (int i = 0; i < CTRL_NONCE_BYTES; i++) {
		nonce_a[i] = (uint8_t)(0xa0 + i);
		nonce_b[i] = (uint8_t)(0x31 * i + 7);
	}
	for (int i = 0; i < CTRL_MAC_BYTES; i++)
		mac[i] = (uint8_t)(0xff - i);
	for (int i = 0; i <= CTRL_TOKEN_BYTES; i++)
		token[i] = (uint8_t)(0x10 + i);
	return 0;
}

static ProtobufCBinaryData bin(const uint8_t *p, size_t n)
{
	return (ProtobufCBinaryData){ .len = n, .data = (uint8_t *)p };
}

/* Pack m; returns a malloc'ed buffer and its length. */
static uint8_t *pack(const Spillway__Ctrl *m, size_t *len)
{
	size_t n = ctrl_packed_size(m);
	uint8_t *buf = malloc(n ? n : 1);
	assert_non_null(buf);
	int rc = ctrl_pack(m, buf, n);
	assert_int_equal(rc, (int)n);
	*len = n;
	return buf;
}

/* Pack, unpack, and check the result validates and re-packs to the same
 * bytes. The caller compares fields and frees with ctrl_free. */
static Spillway__Ctrl *roundtrip(const Spillway__Ctrl *m)
{
	const char *why = NULL;
	assert_int_equal(ctrl_validate(m, &why), 0);
	size_t len;
	uint8_t *buf = pack(m, &len);
	int err = 0;
	why = NULL;
	Spillway__Ctrl *out = ctrl_unpack(buf, len, &err, &why);
	if (!out)
		fail_msg("%s did not round-trip: %s", ctrl_msg_name(m), why ? why : "?");
	assert_int_equal(out->msg_case, m->msg_case);
	assert_string_equal(ctrl_msg_name(out), ctrl_msg_name(m));
	size_t len2;
	uint8_t *buf2 = pack(out, &len2);
	assert_int_equal(len2, len);
	assert_memory_equal(buf2, buf, len);
	free(buf2);
	free(buf);
	return out;
}

static void expect_valid(const Spillway__Ctrl *m)
{
	ctrl_free(roundtrip(m));
}

static void expect_reject_bytes(const void *buf, size_t len)
{
	int err = 0;
	const char *why = NULL;
	Spillway__Ctrl *out = ctrl_unpack(buf, len, &err, &why);
	if (out) {
		const char *name = ctrl_msg_name(out);
		ctrl_free(out);
		fail_msg("accepted a %s that should be rejected", name);
	}
	assert_int_equal(err, -EPROTO);
	assert_non_null(why);
	assert_true(strlen(why) > 0);
	/* err and why are optional. */
	assert_null(ctrl_unpack(buf, len, NULL, NULL));
}

static void expect_reject(const Spillway__Ctrl *m)
{
	const char *why = NULL;
	assert_int_equal(ctrl_validate(m, &why), -EPROTO);
	assert_non_null(why);
	assert_int_equal(ctrl_validate(m, NULL), -EPROTO);
	size_t len;
	uint8_t *buf = pack(m, &len);
	expect_reject_bytes(buf, len);
	free(buf);
}

/* A text field of exactly max bytes is valid; one byte more is not. */
static void expect_text_limit(Spillway__Ctrl *m, char **field, size_t max)
{
	char *text = malloc(max + 2);
	assert_non_null(text);
	memset(text, 't', max + 1);
	text[max] = '\0';
	*field = text;
	expect_valid(m);
	text[max] = 't';
	text[max + 1] = '\0';
	expect_reject(m);
	free(text);
	*field = "";
}

static Spillway__ClientStats make_client_stats(const char *name)
{
	Spillway__ClientStats c = SPILLWAY__CLIENT_STATS__INIT;
	c.name = (char *)name;
	c.client_id = UINT64_C(0x1122334455667788);
	c.priority = -1000;
	c.reservation_bytes = UINT64_C(1) << 30;
	c.limit_bytes = UINT64_C(4) << 30;
	c.used_bytes = UINT64_C(3) << 30;
	c.extents = 1536;
	c.connections = 4;
	c.grace_left_ms = 30000;
	c.pages_read = UINT64_MAX;
	c.pages_written = UINT64_C(1) << 40;
	return c;
}

static void check_client_stats(const Spillway__ClientStats *a, const Spillway__ClientStats *b)
{
	assert_non_null(a);
	assert_string_equal(a->name, b->name);
	assert_true(a->client_id == b->client_id);
	assert_int_equal(a->priority, b->priority);
	assert_true(a->reservation_bytes == b->reservation_bytes);
	assert_true(a->limit_bytes == b->limit_bytes);
	assert_true(a->used_bytes == b->used_bytes);
	assert_int_equal(a->extents, b->extents);
	assert_int_equal(a->connections, b->connections);
	assert_true(a->grace_left_ms == b->grace_left_ms);
	assert_true(a->pages_read == b->pages_read);
	assert_true(a->pages_written == b->pages_written);
}

/* ---- round trips -------------------------------------------------------- */

static void test_rt_hello(void **state)
{
	(void)state;
	Spillway__Hello h = SPILLWAY__HELLO__INIT;
	h.version = SPILL_WIRE_VERSION;
	h.software = "libspillway 0.1";
	h.client_nonce = bin(nonce_a, CTRL_NONCE_BYTES);
	Spillway__Ctrl m = SPILLWAY__CTRL__INIT;
	m.msg_case = SPILLWAY__CTRL__MSG_HELLO;
	m.hello = &h;
	Spillway__Ctrl *o = roundtrip(&m);
	assert_string_equal(ctrl_msg_name(o), "hello");
	assert_int_equal(o->hello->version, SPILL_WIRE_VERSION);
	assert_string_equal(o->hello->software, "libspillway 0.1");
	assert_int_equal(o->hello->client_nonce.len, CTRL_NONCE_BYTES);
	assert_memory_equal(o->hello->client_nonce.data, nonce_a, CTRL_NONCE_BYTES);
	ctrl_free(o);
}

static void test_rt_hello_reply(void **state)
{
	(void)state;
	Spillway__HelloReply r = SPILLWAY__HELLO_REPLY__INIT;
	r.version = 1;
	r.auth_required = 1;
	r.server_nonce = bin(nonce_b, CTRL_NONCE_BYTES);
	r.max_inflight = 256;
	r.max_batch_pages = SPILL_MAX_BATCH_PAGES;
	r.extent_bytes = UINT64_C(1) << 30;
	r.server_id = "node-7.rack-2";
	Spillway__Ctrl m = SPILLWAY__CTRL__INIT;
	m.msg_case = SPILLWAY__CTRL__MSG_HELLO_REPLY;
	m.hello_reply = &r;
	Spillway__Ctrl *o = roundtrip(&m);
	const Spillway__HelloReply *x = o->hello_reply;
	assert_int_equal(x->version, 1);
	assert_true(x->auth_required);
	assert_int_equal(x->server_nonce.len, CTRL_NONCE_BYTES);
	assert_memory_equal(x->server_nonce.data, nonce_b, CTRL_NONCE_BYTES);
	assert_int_equal(x->max_inflight, 256);
	assert_int_equal(x->max_batch_pages, SPILL_MAX_BATCH_PAGES);
	assert_true(x->extent_bytes == UINT64_C(1) << 30);
	assert_string_equal(x->server_id, "node-7.rack-2");
	ctrl_free(o);
}

static void test_rt_auth(void **state)
{
	(void)state;
	Spillway__Auth a = SPILLWAY__AUTH__INIT;
	a.mac = bin(mac, CTRL_MAC_BYTES);
	Spillway__Ctrl m = SPILLWAY__CTRL__INIT;
	m.msg_case = SPILLWAY__CTRL__MSG_AUTH;
	m.auth = &a;
	Spillway__Ctrl *o = roundtrip(&m);
	assert_int_equal(o->auth->mac.len, CTRL_MAC_BYTES);
	assert_memory_equal(o->auth->mac.data, mac, CTRL_MAC_BYTES);
	ctrl_free(o);

	Spillway__AuthReply ar = SPILLWAY__AUTH_REPLY__INIT;
	ar.mac = bin(nonce_b, CTRL_MAC_BYTES);
	m.msg_case = SPILLWAY__CTRL__MSG_AUTH_REPLY;
	m.auth_reply = &ar;
	o = roundtrip(&m);
	assert_int_equal(o->auth_reply->mac.len, CTRL_MAC_BYTES);
	assert_memory_equal(o->auth_reply->mac.data, nonce_b, CTRL_MAC_BYTES);
	ctrl_free(o);
}

static void test_rt_register(void **state)
{
	(void)state;
	Spillway__Register r = SPILLWAY__REGISTER__INIT;
	r.name = "db-1.prod:shard_7";
	r.priority = -1000;
	r.reservation_bytes = UINT64_C(2) << 30;
	r.limit_bytes = UINT64_C(8) << 30;
	r.token = bin(token, CTRL_TOKEN_BYTES);
	Spillway__Ctrl m = SPILLWAY__CTRL__INIT;
	m.msg_case = SPILLWAY__CTRL__MSG_REGISTER;
	m.register_ = &r;
	Spillway__Ctrl *o = roundtrip(&m);
	const Spillway__Register *x = o->register_;
	assert_string_equal(ctrl_msg_name(o), "register");
	assert_string_equal(x->name, "db-1.prod:shard_7");
	assert_int_equal(x->priority, -1000);
	assert_true(x->reservation_bytes == UINT64_C(2) << 30);
	assert_true(x->limit_bytes == UINT64_C(8) << 30);
	assert_int_equal(x->token.len, CTRL_TOKEN_BYTES);
	assert_memory_equal(x->token.data, token, CTRL_TOKEN_BYTES);
	ctrl_free(o);

	/* New identity: no token, no limit, top priority. */
	r.token = bin(NULL, 0);
	r.limit_bytes = 0;
	r.priority = 1000;
	o = roundtrip(&m);
	assert_int_equal(o->register_->token.len, 0);
	assert_true(o->register_->limit_bytes == 0);
	assert_int_equal(o->register_->priority, 1000);
	ctrl_free(o);
}

static void test_rt_register_reply(void **state)
{
	(void)state;
	Spillway__ExtentInfo e[3];
	Spillway__ExtentInfo *ep[3];
	for (int i = 0; i < 3; i++) {
		spillway__extent_info__init(&e[i]);
		e[i].extent_id = UINT64_C(0x100000000) * (uint64_t)(i + 1) + (uint64_t)i;
		e[i].npages = 262144u + (uint32_t)i;
		e[i].node = (uint32_t)i;
		ep[i] = &e[i];
	}
	Spillway__RegisterReply r = SPILLWAY__REGISTER_REPLY__INIT;
	r.client_id = 42;
	r.token = bin(token, CTRL_TOKEN_BYTES);
	r.resumed = 1;
	r.n_extents = 3;
	r.extents = ep;
	r.priority = -7;
	r.reservation_bytes = 12345;
	r.limit_bytes = UINT64_MAX;
	Spillway__Ctrl m = SPILLWAY__CTRL__INIT;
	m.msg_case = SPILLWAY__CTRL__MSG_REGISTER_REPLY;
	m.register_reply = &r;
	Spillway__Ctrl *o = roundtrip(&m);
	const Spillway__RegisterReply *x = o->register_reply;
	assert_true(x->client_id == 42);
	assert_int_equal(x->token.len, CTRL_TOKEN_BYTES);
	assert_memory_equal(x->token.data, token, CTRL_TOKEN_BYTES);
	assert_true(x->resumed);
	assert_int_equal(x->n_extents, 3);
	for (int i = 0; i < 3; i++) {
		assert_true(x->extents[i]->extent_id == e[i].extent_id);
		assert_int_equal(x->extents[i]->npages, e[i].npages);
		assert_int_equal(x->extents[i]->node, e[i].node);
	}
	assert_int_equal(x->priority, -7);
	assert_true(x->reservation_bytes == 12345);
	assert_true(x->limit_bytes == UINT64_MAX);
	ctrl_free(o);
}

static void test_rt_alloc(void **state)
{
	(void)state;
	Spillway__AllocExtent a = SPILLWAY__ALLOC_EXTENT__INIT;
	a.count = CTRL_ALLOC_MAX;
	a.node = -1;
	Spillway__Ctrl m = SPILLWAY__CTRL__INIT;
	m.msg_case = SPILLWAY__CTRL__MSG_ALLOC_EXTENT;
	m.alloc_extent = &a;
	Spillway__Ctrl *o = roundtrip(&m);
	assert_int_equal(o->alloc_extent->count, CTRL_ALLOC_MAX);
	assert_int_equal(o->alloc_extent->node, -1);
	ctrl_free(o);
	a.count = 1;
	a.node = 3;
	o = roundtrip(&m);
	assert_int_equal(o->alloc_extent->count, 1);
	assert_int_equal(o->alloc_extent->node, 3);
	ctrl_free(o);

	Spillway__ExtentInfo e[CTRL_ALLOC_MAX];
	Spillway__ExtentInfo *ep[CTRL_ALLOC_MAX];
	for (int i = 0; i < CTRL_ALLOC_MAX; i++) {
		spillway__extent_info__init(&e[i]);
		e[i].extent_id = (uint64_t)i * 977 + 1;
		e[i].npages = 512;
		e[i].node = (uint32_t)(i % 4);
		ep[i] = &e[i];
	}
	Spillway__AllocExtentReply r = SPILLWAY__ALLOC_EXTENT_REPLY__INIT;
	r.n_extents = CTRL_ALLOC_MAX;
	r.extents = ep;
	m.msg_case = SPILLWAY__CTRL__MSG_ALLOC_EXTENT_REPLY;
	m.alloc_extent_reply = &r;
	o = roundtrip(&m);
	assert_int_equal(o->alloc_extent_reply->n_extents, CTRL_ALLOC_MAX);
	for (int i = 0; i < CTRL_ALLOC_MAX; i++) {
		assert_true(o->alloc_extent_reply->extents[i]->extent_id == e[i].extent_id);
		assert_int_equal(o->alloc_extent_reply->extents[i]->npages, 512);
		assert_int_equal(o->alloc_extent_reply->extents[i]->node, e[i].node);
	}
	ctrl_free(o);
	/* An empty reply (nothing could be allocated) is legal. */
	r.n_extents = 0;
	r.extents = NULL;
	o = roundtrip(&m);
	assert_int_equal(o->alloc_extent_reply->n_extents, 0);
	ctrl_free(o);
}

static void test_rt_free(void **state)
{
	(void)state;
	uint64_t ids[1024];
	for (size_t i = 0; i < 1024; i++)
		ids[i] = i == 0 ? UINT64_MAX : (uint64_t)i << 20;
	Spillway__FreeExtent f = SPILLWAY__FREE_EXTENT__INIT;
	f.n_extent_ids = 1024;
	f.extent_ids = ids;
	Spillway__Ctrl m = SPILLWAY__CTRL__INIT;
	m.msg_case = SPILLWAY__CTRL__MSG_FREE_EXTENT;
	m.free_extent = &f;
	Spillway__Ctrl *o = roundtrip(&m);
	assert_int_equal(o->free_extent->n_extent_ids, 1024);
	assert_memory_equal(o->free_extent->extent_ids, ids, sizeof(ids));
	ctrl_free(o);
	f.n_extent_ids = 1;
	o = roundtrip(&m);
	assert_int_equal(o->free_extent->n_extent_ids, 1);
	assert_true(o->free_extent->extent_ids[0] == UINT64_MAX);
	ctrl_free(o);

	Spillway__FreeExtentReply r = SPILLWAY__FREE_EXTENT_REPLY__INIT;
	r.freed = 17;
	m.msg_case = SPILLWAY__CTRL__MSG_FREE_EXTENT_REPLY;
	m.free_extent_reply = &r;
	o = roundtrip(&m);
	assert_int_equal(o->free_extent_reply->freed, 17);
	ctrl_free(o);
}

static void test_rt_stats(void **state)
{
	(void)state;
	Spillway__Stats s = SPILLWAY__STATS__INIT;
	Spillway__Ctrl m = SPILLWAY__CTRL__INIT;
	m.msg_case = SPILLWAY__CTRL__MSG_STATS;
	m.stats = &s;
	Spillway__Ctrl *o = roundtrip(&m);
	assert_non_null(o->stats);
	assert_string_equal(ctrl_msg_name(o), "stats");
	ctrl_free(o);

	Spillway__NodeStats n[2];
	Spillway__NodeStats *np[2];
	for (int i = 0; i < 2; i++) {
		spillway__node_stats__init(&n[i]);
		n[i].node = (uint32_t)i;
		n[i].capacity_bytes = (UINT64_C(64) << 30) * (uint64_t)(i + 1);
		n[i].used_bytes = (UINT64_C(3) << 30) + (uint64_t)i;
		np[i] = &n[i];
	}
	Spillway__ClientStats self = make_client_stats("me");
	Spillway__StatsReply r = SPILLWAY__STATS_REPLY__INIT;
	r.capacity_bytes = UINT64_C(192) << 30;
	r.used_bytes = UINT64_C(6) << 30;
	r.n_nodes = 2;
	r.nodes = np;
	r.self = &self;
	m.msg_case = SPILLWAY__CTRL__MSG_STATS_REPLY;
	m.stats_reply = &r;
	o = roundtrip(&m);
	const Spillway__StatsReply *x = o->stats_reply;
	assert_true(x->capacity_bytes == UINT64_C(192) << 30);
	assert_true(x->used_bytes == UINT64_C(6) << 30);
	assert_int_equal(x->n_nodes, 2);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(x->nodes[i]->node, n[i].node);
		assert_true(x->nodes[i]->capacity_bytes == n[i].capacity_bytes);
		assert_true(x->nodes[i]->used_bytes == n[i].used_bytes);
	}
	check_client_stats(x->self, &self);
	ctrl_free(o);
	/* self is optional. */
	r.self = NULL;
	o = roundtrip(&m);
	assert_null(o->stats_reply->self);
	ctrl_free(o);
}

static void test_rt_admin(void **state)
{
	(void)state;
	Spillway__AdminStatus s = SPILLWAY__ADMIN_STATUS__INIT;
	Spillway__Ctrl m = SPILLWAY__CTRL__INIT;
	m.msg_case = SPILLWAY__CTRL__MSG_ADMIN_STATUS;
	m.admin_status = &s;
	ctrl_free(roundtrip(&m));

	Spillway__NodeStats n = SPILLWAY__NODE_STATS__INIT;
	n.node = 1;
	n.capacity_bytes = 1000;
	n.used_bytes = 10;
	Spillway__NodeStats *np = &n;
	Spillway__ClientStats c[3] = { make_client_stats("a"), make_client_stats("b.c"),
				       make_client_stats("x:y-z_0") };
	c[1].priority = 1000;
	c[2].grace_left_ms = 0;
	Spillway__ClientStats *cp[3] = { &c[0], &c[1], &c[2] };
	Spillway__AdminStatusReply r = SPILLWAY__ADMIN_STATUS_REPLY__INIT;
	r.server_id = "srv";
	r.version = SPILL_VERSION;
	r.uptime_ms = 123456789;
	r.capacity_bytes = 100;
	r.used_bytes = 50;
	r.reserved_bytes = 20;
	r.extent_bytes = 1 << 30;
	r.n_nodes = 1;
	r.nodes = &np;
	r.n_clients = 3;
	r.clients = cp;
	m.msg_case = SPILLWAY__CTRL__MSG_ADMIN_STATUS_REPLY;
	m.admin_status_reply = &r;
	Spillway__Ctrl *o = roundtrip(&m);
	const Spillway__AdminStatusReply *x = o->admin_status_reply;
	assert_string_equal(x->server_id, "srv");
	assert_string_equal(x->version, SPILL_VERSION);
	assert_true(x->uptime_ms == 123456789);
	assert_true(x->capacity_bytes == 100);
	assert_true(x->used_bytes == 50);
	assert_true(x->reserved_bytes == 20);
	assert_true(x->extent_bytes == 1 << 30);
	assert_int_equal(x->n_nodes, 1);
	assert_int_equal(x->nodes[0]->node, 1);
	assert_true(x->nodes[0]->capacity_bytes == 1000);
	assert_true(x->nodes[0]->used_bytes == 10);
	assert_int_equal(x->n_clients, 3);
	for (int i = 0; i < 3; i++)
		check_client_stats(x->clients[i], &c[i]);
	ctrl_free(o);

	Spillway__AdminClientSet cs = SPILLWAY__ADMIN_CLIENT_SET__INIT;
	cs.name = "db1";
	cs.set_priority = 1;
	cs.priority = 500;
	cs.set_reservation = 1;
	cs.reservation_bytes = 1 << 20;
	cs.set_limit = 1;
	cs.limit_bytes = 1 << 30;
	m.msg_case = SPILLWAY__CTRL__MSG_ADMIN_CLIENT_SET;
	m.admin_client_set = &cs;
	o = roundtrip(&m);
	const Spillway__AdminClientSet *y = o->admin_client_set;
	assert_string_equal(y->name, "db1");
	assert_true(y->set_priority);
	assert_int_equal(y->priority, 500);
	assert_true(y->set_reservation);
	assert_true(y->reservation_bytes == 1 << 20);
	assert_true(y->set_limit);
	assert_true(y->limit_bytes == 1 << 30);
	ctrl_free(o);

	Spillway__AdminClientSetReply csr = SPILLWAY__ADMIN_CLIENT_SET_REPLY__INIT;
	csr.client = &c[1];
	m.msg_case = SPILLWAY__CTRL__MSG_ADMIN_CLIENT_SET_REPLY;
	m.admin_client_set_reply = &csr;
	o = roundtrip(&m);
	check_client_stats(o->admin_client_set_reply->client, &c[1]);
	ctrl_free(o);
}

static void test_rt_reclaim_error(void **state)
{
	(void)state;
	Spillway__Reclaim r = SPILLWAY__RECLAIM__INIT;
	r.reclaim_id = 99;
	r.bytes = UINT64_C(5) << 30;
	r.deadline_ms = 2500;
	Spillway__Ctrl m = SPILLWAY__CTRL__INIT;
	m.msg_case = SPILLWAY__CTRL__MSG_RECLAIM;
	m.reclaim = &r;
	Spillway__Ctrl *o = roundtrip(&m);
	assert_true(o->reclaim->reclaim_id == 99);
	assert_true(o->reclaim->bytes == UINT64_C(5) << 30);
	assert_true(o->reclaim->deadline_ms == 2500);
	ctrl_free(o);

	Spillway__ReclaimReply rr = SPILLWAY__RECLAIM_REPLY__INIT;
	rr.reclaim_id = 99;
	rr.freed_bytes = UINT64_C(4) << 30;
	m.msg_case = SPILLWAY__CTRL__MSG_RECLAIM_REPLY;
	m.reclaim_reply = &rr;
	o = roundtrip(&m);
	assert_true(o->reclaim_reply->reclaim_id == 99);
	assert_true(o->reclaim_reply->freed_bytes == UINT64_C(4) << 30);
	ctrl_free(o);

	for (uint32_t st = 1; st < SPILL_ST_MAX; st++) {
		Spillway__Error e = SPILLWAY__ERROR__INIT;
		e.status = st;
		e.message = "pool full: 0 of 64 GiB free";
		m.msg_case = SPILLWAY__CTRL__MSG_ERROR;
		m.error = &e;
		o = roundtrip(&m);
		assert_string_equal(ctrl_msg_name(o), "error");
		assert_int_equal(o->error->status, st);
		assert_string_equal(o->error->message, "pool full: 0 of 64 GiB free");
		ctrl_free(o);
	}
}

/* ---- semantic rules ----------------------------------------------------- */

static void test_reject_no_message(void **state)
{
	(void)state;
	Spillway__Ctrl m = SPILLWAY__CTRL__INIT;
	const char *why = NULL;
	assert_int_equal(ctrl_validate(&m, &why), -EPROTO);
	assert_non_null(why);
	assert_string_equal(ctrl_msg_name(&m), "none");
	/* On the wire: a Ctrl holding only an unknown field (99, varint 1). */
	static const uint8_t unknown_only[] = { 0x98, 0x06, 0x01 };
	expect_reject_bytes(unknown_only, sizeof(unknown_only));
}

static void test_reject_hello(void **state)
{
	(void)state;
	Spillway__Hello h = SPILLWAY__HELLO__INIT;
	h.version = 1;
	h.client_nonce = bin(nonce_a, CTRL_NONCE_BYTES);
	Spillway__Ctrl m = SPILLWAY__CTRL__INIT;
	m.msg_case = SPILLWAY__CTRL__MSG_HELLO;
	m.hello = &h;
	expect_valid(&m);
	static const size_t bad[] = { 0, 1, 16, 31, 33, 64 };
	uint8_t big[64] = { 0 };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		h.client_nonce = bin(big, bad[i]);
		expect_reject(&m);
	}
	h.client_nonce = bin(nonce_a, CTRL_NONCE_BYTES);
	expect_text_limit(&m, &h.software, 256);
}

static void test_reject_hello_reply(void **state)
{
	(void)state;
	Spillway__HelloReply r = SPILLWAY__HELLO_REPLY__INIT;
	Spillway__Ctrl m = SPILLWAY__CTRL__INIT;
	m.msg_case = SPILLWAY__CTRL__MSG_HELLO_REPLY;
	m.hello_reply = &r;
#define RESET_HR() do { \
	r.server_nonce = bin(nonce_b, CTRL_NONCE_BYTES); \
	r.max_inflight = 1; \
	r.max_batch_pages = 1; \
	r.extent_bytes = SPILL_PAGE_SIZE; \
	r.server_id = ""; \
	expect_valid(&m); \
} while (0)
	RESET_HR();
	r.server_nonce = bin(nonce_b, CTRL_NONCE_BYTES - 1);
	expect_reject(&m);
	RESET_HR();
	r.max_inflight = 0;
	expect_reject(&m);
	RESET_HR();
	r.max_batch_pages = 0;
	expect_reject(&m);
	RESET_HR();
	r.max_batch_pages = SPILL_MAX_BATCH_PAGES;
	expect_valid(&m);
	r.max_batch_pages = SPILL_MAX_BATCH_PAGES + 1;
	expect_reject(&m);
	RESET_HR();
	r.extent_bytes = 0;
	expect_reject(&m);
	r.extent_bytes = SPILL_PAGE_SIZE + 1;
	expect_reject(&m);
	r.extent_bytes = (uint64_t)UINT32_MAX * SPILL_PAGE_SIZE;
	expect_valid(&m);
	r.extent_bytes = ((uint64_t)UINT32_MAX + 1) * SPILL_PAGE_SIZE;
	expect_reject(&m);
	RESET_HR();
	char id[258];
	memset(id, 's', sizeof(id));
	id[257] = '\0';
	r.server_id = id;
	expect_reject(&m);
#undef RESET_HR
}

static void test_reject_auth(void **state)
{
	(void)state;
	uint8_t big[64] = { 0 };
	static const size_t bad[] = { 0, 31, 33, 64 };
	Spillway__Auth a = SPILLWAY__AUTH__INIT;
	Spillway__AuthReply ar = SPILLWAY__AUTH_REPLY__INIT;
	Spillway__Ctrl m = SPILLWAY__CTRL__INIT, mr = SPILLWAY__CTRL__INIT;
	m.msg_case = SPILLWAY__CTRL__MSG_AUTH;
	m.auth = &a;
	mr.msg_case = SPILLWAY__CTRL__MSG_AUTH_REPLY;
	mr.auth_reply = &ar;
	a.mac = ar.mac = bin(mac, CTRL_MAC_BYTES);
	expect_valid(&m);
	expect_valid(&mr);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		a.mac = ar.mac = bin(big, bad[i]);
		expect_reject(&m);
		expect_reject(&mr);
	}
}

static void test_reject_register(void **state)
{
	(void)state;
	Spillway__Register r = SPILLWAY__REGISTER__INIT;
	Spillway__Ctrl m = SPILLWAY__CTRL__INIT;
	m.msg_case = SPILLWAY__CTRL__MSG_REGISTER;
	m.register_ = &r;
	char name[80];
#define RESET_REG() do { \
	r.name = "client"; \
	r.priority = 0; \
	r.reservation_bytes = 0; \
	r.limit_bytes = 0; \
	r.token = bin(NULL, 0); \
	expect_valid(&m); \
} while (0)
	/* Names. */
	RESET_REG();
	r.name = "";
	expect_reject(&m);
	memset(name, 'n', sizeof(name));
	name[64] = '\0';
	r.name = name;
	expect_valid(&m);
	name[64] = 'n';
	name[65] = '\0';
	expect_reject(&m);
	static const char *const bad_names[] = { "a b", "a/b", "a\tb", "x\n", "caf\xc3\xa9",
						 "a@b", "a+b", "[a]", "a,b", "%s" };
	for (size_t i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++) {
		RESET_REG();
		r.name = (char *)bad_names[i];
		expect_reject(&m);
	}
	/* Priority. */
	RESET_REG();
	r.priority = -1000;
	expect_valid(&m);
	r.priority = 1000;
	expect_valid(&m);
	r.priority = -1001;
	expect_reject(&m);
	r.priority = 1001;
	expect_reject(&m);
	r.priority = INT32_MIN;
	expect_reject(&m);
	r.priority = INT32_MAX;
	expect_reject(&m);
	/* Token: empty or exactly 16 bytes. */
	RESET_REG();
	r.token = bin(token, CTRL_TOKEN_BYTES);
	expect_valid(&m);
	r.token = bin(token, CTRL_TOKEN_BYTES - 1);
	expect_reject(&m);
	r.token = bin(token, CTRL_TOKEN_BYTES + 1);
	expect_reject(&m);
	r.token = bin(token, 1);
	expect_reject(&m);
	/* Reservation above a limit; no limit means any reservation. */
	RESET_REG();
	r.limit_bytes = 1 << 20;
	r.reservation_bytes = 1 << 20;
	expect_valid(&m);
	r.reservation_bytes = (1 << 20) + 1;
	expect_reject(&m);
	r.limit_bytes = 0;
	r.reservation_bytes = UINT64_MAX;
	expect_valid(&m);
#undef RESET_REG
}

static void test_reject_register_reply(void **state)
{
	(void)state;
	Spillway__RegisterReply r = SPILLWAY__REGISTER_REPLY__INIT;
	r.token = bin(token, CTRL_TOKEN_BYTES);
	Spillway__Ctrl m = SPILLWAY__CTRL__INIT;
	m.msg_case = SPILLWAY__CTRL__MSG_REGISTER_REPLY;
	m.register_reply = &r;
	expect_valid(&m);
	r.token = bin(NULL, 0); /* the reply always carries the token */
	expect_reject(&m);
	r.token = bin(token, CTRL_TOKEN_BYTES - 1);
	expect_reject(&m);
	r.token = bin(token, CTRL_TOKEN_BYTES);
	r.priority = 1001;
	expect_reject(&m);
	r.priority = -1001;
	expect_reject(&m);
}

static void test_reject_alloc(void **state)
{
	(void)state;
	Spillway__AllocExtent a = SPILLWAY__ALLOC_EXTENT__INIT;
	Spillway__Ctrl m = SPILLWAY__CTRL__INIT;
	m.msg_case = SPILLWAY__CTRL__MSG_ALLOC_EXTENT;
	m.alloc_extent = &a;
	a.count = 1;
	a.node = -1;
	expect_valid(&m);
	a.count = 0;
	expect_reject(&m);
	a.count = CTRL_ALLOC_MAX + 1;
	expect_reject(&m);
	a.count = UINT32_MAX;
	expect_reject(&m);
	a.count = 1;
	a.node = 1023;
	expect_valid(&m);
	a.node = -2;
	expect_reject(&m);
	a.node = 1024;
	expect_reject(&m);
	a.node = INT32_MIN;
	expect_reject(&m);

	Spillway__ExtentInfo e = SPILLWAY__EXTENT_INFO__INIT;
	Spillway__ExtentInfo *ep[CTRL_ALLOC_MAX + 1];
	for (int i = 0; i <= CTRL_ALLOC_MAX; i++)
		ep[i] = &e;
	Spillway__AllocExtentReply r = SPILLWAY__ALLOC_EXTENT_REPLY__INIT;
	r.n_extents = CTRL_ALLOC_MAX + 1;
	r.extents = ep;
	m.msg_case = SPILLWAY__CTRL__MSG_ALLOC_EXTENT_REPLY;
	m.alloc_extent_reply = &r;
	expect_reject(&m);
}

static void test_reject_free(void **state)
{
	(void)state;
	uint64_t ids[1025] = { 0 };
	Spillway__FreeExtent f = SPILLWAY__FREE_EXTENT__INIT;
	Spillway__Ctrl m = SPILLWAY__CTRL__INIT;
	m.msg_case = SPILLWAY__CTRL__MSG_FREE_EXTENT;
	m.free_extent = &f;
	f.n_extent_ids = 1;
	f.extent_ids = ids;
	expect_valid(&m);
	f.n_extent_ids = 0;
	f.extent_ids = NULL;
	expect_reject(&m);
	f.n_extent_ids = 1025;
	f.extent_ids = ids;
	expect_reject(&m);
}

static void test_reject_client_stats(void **state)
{
	(void)state;
	Spillway__ClientStats c = make_client_stats("ok");
	Spillway__ClientStats *cp[2] = { &c, &c };
	Spillway__Ctrl m = SPILLWAY__CTRL__INIT;

	Spillway__StatsReply sr = SPILLWAY__STATS_REPLY__INIT;
	sr.self = &c;
	m.msg_case = SPILLWAY__CTRL__MSG_STATS_REPLY;
	m.stats_reply = &sr;
	expect_valid(&m);
	c.name = "";
	expect_reject(&m);
	c = make_client_stats("bad name");
	expect_reject(&m);
	c = make_client_stats("ok");
	c.priority = 1001;
	expect_reject(&m);

	c = make_client_stats("ok");
	Spillway__AdminStatusReply ar = SPILLWAY__ADMIN_STATUS_REPLY__INIT;
	ar.n_clients = 2;
	ar.clients = cp;
	m.msg_case = SPILLWAY__CTRL__MSG_ADMIN_STATUS_REPLY;
	m.admin_status_reply = &ar;
	expect_valid(&m);
	Spillway__ClientStats bad = make_client_stats("ok!");
	cp[1] = &bad;
	expect_reject(&m);

	Spillway__AdminClientSetReply csr = SPILLWAY__ADMIN_CLIENT_SET_REPLY__INIT;
	csr.client = &c;
	m.msg_case = SPILLWAY__CTRL__MSG_ADMIN_CLIENT_SET_REPLY;
	m.admin_client_set_reply = &csr;
	expect_valid(&m);
	csr.client = NULL; /* the reply must say which client */
	expect_reject(&m);
	csr.client = &bad;
	expect_reject(&m);
}

static void test_reject_admin_client_set(void **state)
{
	(void)state;
	Spillway__AdminClientSet s = SPILLWAY__ADMIN_CLIENT_SET__INIT;
	Spillway__Ctrl m = SPILLWAY__CTRL__INIT;
	m.msg_case = SPILLWAY__CTRL__MSG_ADMIN_CLIENT_SET;
	m.admin_client_set = &s;
	s.name = "db1";
	expect_valid(&m);
	s.name = "";
	expect_reject(&m);
	s.name = "db 1";
	expect_reject(&m);
	s.name = "db1";
	/* A priority that is not being set is not checked... */
	s.priority = 5000;
	expect_valid(&m);
	/* ...one that is, is. */
	s.set_priority = 1;
	expect_reject(&m);
	s.priority = -1001;
	expect_reject(&m);
	s.priority = -1000;
	expect_valid(&m);
}

/* Cluster messages: a server is named by a URL; reports and replies carry
 * only valid client names; an action asks for something. */
static void test_reject_cluster(void **state)
{
	(void)state;
	Spillway__ServerInfo si = SPILLWAY__SERVER_INFO__INIT;
	si.url = "tcp://10.0.0.2:7707";
	si.server_id = "mem2:17";
	Spillway__ClientStats cs = SPILLWAY__CLIENT_STATS__INIT;
	cs.name = "db1";
	Spillway__ClientStats *csp = &cs;
	Spillway__PeerReport rep = SPILLWAY__PEER_REPORT__INIT;
	rep.server = &si;
	rep.n_clients = 1;
	rep.clients = &csp;
	Spillway__Ctrl m = SPILLWAY__CTRL__INIT;
	m.msg_case = SPILLWAY__CTRL__MSG_PEER_REPORT;
	m.peer_report = &rep;
	expect_valid(&m);
	expect_text_limit(&m, &si.url, 512);
	si.url = "";
	expect_reject(&m);
	si.url = "tcp://10.0.0.2:7707";
	rep.server = NULL;
	expect_reject(&m);
	rep.server = &si;
	cs.name = "db 1";
	expect_reject(&m);
	cs.name = "db1";

	Spillway__PeerAction act = SPILLWAY__PEER_ACTION__INIT;
	act.client = "db1";
	act.bytes = 2 << 20;
	Spillway__PeerAction *actp = &act;
	Spillway__ServerInfo *sip = &si;
	Spillway__PeerReportReply rr = SPILLWAY__PEER_REPORT_REPLY__INIT;
	rr.n_servers = 1;
	rr.servers = &sip;
	rr.n_actions = 1;
	rr.actions = &actp;
	m.msg_case = SPILLWAY__CTRL__MSG_PEER_REPORT_REPLY;
	m.peer_report_reply = &rr;
	expect_valid(&m);
	act.bytes = 0;
	expect_reject(&m);
	act.bytes = 2 << 20;
	act.client = "";
	expect_reject(&m);
	act.client = "db1";

	/* At most CTRL_CLUSTER_MAX servers in a list. */
	Spillway__ServerInfo **many = calloc(CTRL_CLUSTER_MAX + 1, sizeof(*many));
	assert_non_null(many);
	for (size_t i = 0; i <= CTRL_CLUSTER_MAX; i++)
		many[i] = &si;
	Spillway__ClusterInfoReply ci = SPILLWAY__CLUSTER_INFO_REPLY__INIT;
	ci.arbiter_url = "";
	ci.servers = many;
	ci.n_servers = CTRL_CLUSTER_MAX;
	m.msg_case = SPILLWAY__CTRL__MSG_CLUSTER_INFO_REPLY;
	m.cluster_info_reply = &ci;
	expect_valid(&m);
	ci.n_servers = CTRL_CLUSTER_MAX + 1;
	expect_reject(&m);
	free(many);
}

static void test_reject_error(void **state)
{
	(void)state;
	Spillway__Error e = SPILLWAY__ERROR__INIT;
	Spillway__Ctrl m = SPILLWAY__CTRL__INIT;
	m.msg_case = SPILLWAY__CTRL__MSG_ERROR;
	m.error = &e;
	e.status = SPILL_ST_EINVAL;
	expect_valid(&m);
	e.status = 0;
	expect_reject(&m);
	e.status = SPILL_ST_MAX;
	expect_reject(&m);
	e.status = UINT32_MAX;
	expect_reject(&m);
	e.status = SPILL_ST_MAX - 1;
	expect_text_limit(&m, &e.message, 1024);
}

static void test_reject_garbage(void **state)
{
	(void)state;
	/* Not protobuf at all. */
	static const uint8_t ff[16] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
					0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
	expect_reject_bytes(ff, sizeof(ff));
	/* Field 1 (hello) as length-delimited, length past the end. */
	static const uint8_t overrun[] = { 0x0a, 0x7f, 0x08, 0x01 };
	expect_reject_bytes(overrun, sizeof(overrun));
	/* Field 1 with the wrong wire type (varint for a message). */
	static const uint8_t wrong_type[] = { 0x08, 0x01 };
	expect_reject_bytes(wrong_type, sizeof(wrong_type));
	/* Field number 0 is invalid. */
	static const uint8_t field0[] = { 0x00, 0x01 };
	expect_reject_bytes(field0, sizeof(field0));
	/* Unterminated varint. */
	static const uint8_t varint[] = { 0x98, 0x86, 0x80, 0x80 };
	expect_reject_bytes(varint, sizeof(varint));

	/* A valid message cut short at every length. */
	Spillway__Hello h = SPILLWAY__HELLO__INIT;
	h.version = 1;
	h.software = "x";
	h.client_nonce = bin(nonce_a, CTRL_NONCE_BYTES);
	Spillway__Ctrl m = SPILLWAY__CTRL__INIT;
	m.msg_case = SPILLWAY__CTRL__MSG_HELLO;
	m.hello = &h;
	size_t len;
	uint8_t *buf = pack(&m, &len);
	for (size_t cut = 1; cut < len; cut++)
		expect_reject_bytes(buf, cut);
	free(buf);
}

/* Append an unknown length-delimited field 99 of n bytes to a packed message. */
static uint8_t *pad_unknown(const uint8_t *msg, size_t mlen, size_t total, size_t *outlen)
{
	/* tag (2 bytes) + length varint (3 bytes for 16K..2M) + data */
	assert_true(total >= mlen + 5 + (1 << 14));
	size_t n = total - mlen - 5;
	assert_true(n < (1 << 21));
	uint8_t *p = malloc(total);
	assert_non_null(p);
	memcpy(p, msg, mlen);
	uint8_t *q = p + mlen;
	*q++ = 0x9a; /* (99 << 3) | 2 */
	*q++ = 0x06;
	*q++ = (uint8_t)(0x80 | (n & 0x7f));
	*q++ = (uint8_t)(0x80 | ((n >> 7) & 0x7f));
	*q++ = (uint8_t)(n >> 14);
	memset(q, 'u', n);
	*outlen = total;
	return p;
}

static void test_payload_size_bounds(void **state)
{
	(void)state;
	uint8_t one = 0x5a;
	/* Empty: rejected before decoding (it would decode as "no message"). */
	expect_reject_bytes(&one, 0);

	Spillway__Stats s = SPILLWAY__STATS__INIT;
	Spillway__Ctrl m = SPILLWAY__CTRL__INIT;
	m.msg_case = SPILLWAY__CTRL__MSG_STATS;
	m.stats = &s;
	size_t mlen;
	uint8_t *msg = pack(&m, &mlen);

	/* Exactly SPILL_MAX_CTRL_PAYLOAD bytes of valid message: accepted. */
	size_t len;
	uint8_t *p = pad_unknown(msg, mlen, SPILL_MAX_CTRL_PAYLOAD, &len);
	int err = 0;
	const char *why = NULL;
	Spillway__Ctrl *o = ctrl_unpack(p, len, &err, &why);
	if (!o)
		fail_msg("64 KiB message rejected: %s", why);
	assert_int_equal(o->msg_case, SPILLWAY__CTRL__MSG_STATS);
	/* It keeps the unknown field, so it re-packs to the same size, and
	 * ctrl_pack refuses anything above the limit even with room. */
	assert_int_equal(ctrl_packed_size(o), SPILL_MAX_CTRL_PAYLOAD);
	ctrl_free(o);
	free(p);

	/* One byte more: rejected, although it decodes and validates. */
	p = pad_unknown(msg, mlen, SPILL_MAX_CTRL_PAYLOAD + 1, &len);
	expect_reject_bytes(p, len);
	free(p);
	free(msg);
}

static void test_pack_emsgsize(void **state)
{
	(void)state;
	Spillway__Hello h = SPILLWAY__HELLO__INIT;
	h.version = 1;
	h.software = "libspillway";
	h.client_nonce = bin(nonce_a, CTRL_NONCE_BYTES);
	Spillway__Ctrl m = SPILLWAY__CTRL__INIT;
	m.msg_case = SPILLWAY__CTRL__MSG_HELLO;
	m.hello = &h;
	size_t n = ctrl_packed_size(&m);
	assert_true(n > 32);
	uint8_t *buf = malloc(n + 16);
	assert_non_null(buf);
	memset(buf, 0xee, n + 16);
	assert_int_equal(ctrl_pack(&m, buf, 0), -EMSGSIZE);
	assert_int_equal(ctrl_pack(&m, buf, 1), -EMSGSIZE);
	assert_int_equal(ctrl_pack(&m, buf, n - 1), -EMSGSIZE);
	/* Nothing was written on failure. */
	for (size_t i = 0; i < n + 16; i++)
		assert_int_equal(buf[i], 0xee);
	assert_int_equal(ctrl_pack(&m, buf, n), (int)n);
	/* Nothing written past the packed size. */
	for (size_t i = n; i < n + 16; i++)
		assert_int_equal(buf[i], 0xee);
	assert_int_equal(ctrl_pack(&m, buf, n + 16), (int)n);
	free(buf);

	/* Above SPILL_MAX_CTRL_PAYLOAD: -EMSGSIZE whatever the buffer size. */
	size_t big = SPILL_MAX_CTRL_PAYLOAD / 10 + 16;
	uint64_t *ids = calloc(big, sizeof(*ids));
	assert_non_null(ids);
	for (size_t i = 0; i < big; i++)
		ids[i] = UINT64_MAX - i; /* 10-byte varints: just over the limit */
	Spillway__FreeExtent f = SPILLWAY__FREE_EXTENT__INIT;
	f.n_extent_ids = big;
	f.extent_ids = ids;
	m.msg_case = SPILLWAY__CTRL__MSG_FREE_EXTENT;
	m.free_extent = &f;
	n = ctrl_packed_size(&m);
	assert_true(n > SPILL_MAX_CTRL_PAYLOAD);
	buf = malloc(n);
	assert_non_null(buf);
	assert_int_equal(ctrl_pack(&m, buf, n), -EMSGSIZE);
	free(buf);
	free(ids);
}

static void test_name_valid(void **state)
{
	(void)state;
	char name[70];
	assert_true(ctrl_name_valid("a"));
	assert_true(ctrl_name_valid("Az09._:-"));
	assert_true(ctrl_name_valid("-"));
	assert_false(ctrl_name_valid(""));
	assert_false(ctrl_name_valid(" a"));
	assert_false(ctrl_name_valid("a\x7f"));
	assert_false(ctrl_name_valid("\x80"));
	memset(name, 'x', sizeof(name));
	name[CTRL_NAME_MAX] = '\0';
	assert_true(ctrl_name_valid(name));
	name[CTRL_NAME_MAX] = 'x';
	name[CTRL_NAME_MAX + 1] = '\0';
	assert_false(ctrl_name_valid(name));
	/* Every byte outside the allowed set, in the middle of a name. */
	for (int c = 1; c < 256; c++) {
		int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			 (c >= '0' && c <= '9') || c == '.' || c == '_' || c == ':' || c == '-';
		char s[4] = { 'a', (char)c, 'b', '\0' };
		if (ctrl_name_valid(s) != ok)
			fail_msg("byte 0x%02x: valid=%d, want %d", c, ctrl_name_valid(s), ok);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rt_hello),
		cmocka_unit_test(test_rt_hello_reply),
		cmocka_unit_test(test_rt_auth),
		cmocka_unit_test(test_rt_register),
		cmocka_unit_test(test_rt_register_reply),
		cmocka_unit_test(test_rt_alloc),
		cmocka_unit_test(test_rt_free),
		cmocka_unit_test(test_rt_stats),
		cmocka_unit_test(test_rt_admin),
		cmocka_unit_test(test_rt_reclaim_error),
		cmocka_unit_test(test_reject_cluster),
		cmocka_unit_test(test_reject_no_message),
		cmocka_unit_test(test_reject_hello),
		cmocka_unit_test(test_reject_hello_reply),
		cmocka_unit_test(test_reject_auth),
		cmocka_unit_test(test_reject_register),
		cmocka_unit_test(test_reject_register_reply),
		cmocka_unit_test(test_reject_alloc),
		cmocka_unit_test(test_reject_free),
		cmocka_unit_test(test_reject_client_stats),
		cmocka_unit_test(test_reject_admin_client_set),
		cmocka_unit_test(test_reject_error),
		cmocka_unit_test(test_reject_garbage),
		cmocka_unit_test(test_payload_size_bounds),
		cmocka_unit_test(test_pack_emsgsize),
		cmocka_unit_test(test_name_valid),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
