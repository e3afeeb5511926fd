/* SPDX-License-Identifier: MIT */
/*
 * Seeds for the stream targets. fuzz_server_conn gets client sessions: each
 * request kind, in each handshake mode (no key, the clients' key, the
 * operator key, an arbiter), written at once or in pieces, one ended by a
 * server stop, plus near misses
 * (bad checksum, a reply frame, a cut WRITE, too many in flight).
 * fuzz_client_rx gets server sessions answering exactly the requests the
 * harness's client makes, with its deterministic request ids, plus hostile
 * ones (an unproven "no auth needed", a flood of unsolicited messages, a
 * bad checksum). The mode byte of each is described in its target.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "gen_corpus.h"

static uint8_t pattern[16 * SPILL_PAGE_SIZE + SPILL_PRESENT_MAP_BYTES];

void seed_frame(struct seed_stream *s, uint16_t op, uint8_t flags, uint64_t req_id,
		uint64_t extent, uint32_t page, uint16_t npages, uint16_t status,
		const void *payload, uint32_t plen)
{
	struct frame_hdr h = {
		.version = SPILL_WIRE_VERSION, .flags = flags, .op = op, .req_id = req_id,
		.extent_id = extent, .page = page, .npages = npages, .status = status,
		.payload_len = plen,
	};
	struct spill_wire_hdr w;
	frame_hdr_pack(&h, &w);
	struct iovec iov = { (void *)payload, plen };
	frame_seal(&w, &iov, plen ? 1 : 0);
	if (s->len + sizeof(w) + plen > sizeof(s->bytes)) {
		fprintf(stderr, "seed stream too long\n");
		exit(1);
	}
	memcpy(s->bytes + s->len, &w, sizeof(w));
	if (plen)
		memcpy(s->bytes + s->len + sizeof(w), payload, plen);
	s->len += sizeof(w) + plen;
}

void seed_ctrl(struct seed_stream *s, int reply, uint64_t req_id, Spillway__Ctrl *m)
{
	uint8_t buf[SPILL_MAX_CTRL_PAYLOAD];
	int n = ctrl_pack(m, buf, sizeof(buf));
	if (n < 0) {
		fprintf(stderr, "seed: ctrl_pack %d\n", n);
		exit(1);
	}
	seed_frame(s, SPILL_OP_CTRL | (reply ? SPILL_OP_REPLY : 0), 0, req_id, 0, 0, 0, 0, buf,
		   (uint32_t)n);
}

void seed_stream_put(const char *dir, const char *name, uint8_t mode,
		     const struct seed_stream *s)
{
	seed_put(dir, name, &mode, 1, s->bytes, s->len);
}

static struct seed_stream st;

/* --- fuzz_server_conn --------------------------------------------------- */

static uint64_t next_req = 100;

/* Append a control request of kind k whose message is msg. */
static void req(Spillway__Ctrl__MsgCase k, void *msg)
{
	Spillway__Ctrl m = SPILLWAY__CTRL__INIT;
	m.msg_case = k;
	m.hello = msg; /* every case is a pointer in the same union */
	seed_ctrl(&st, 0, next_req++, &m);
}

static void data(uint16_t op, uint64_t extent, uint32_t page, uint16_t npages)
{
	uint32_t plen = op == SPILL_OP_WRITE ? (uint32_t)npages * SPILL_PAGE_SIZE : 0;
	seed_frame(&st, op, 0, next_req++, extent, page, npages, 0, pattern, plen);
}

/* After the harness's Hello and Register("fz") + two extents (ids 1, 2). */
static void data_session(void)
{
	data(SPILL_OP_WRITE, 1, 0, 2);
	data(SPILL_OP_READ, 1, 0, 4);      /* two present, two absent: ABSENT + map */
	data(SPILL_OP_READ, 1, 0, 2);
	data(SPILL_OP_WRITE, 2, 0, 16);    /* 64 KiB: received straight into the pages */
	data(SPILL_OP_READ, 2, 0, 16);     /* 64 KiB: sent from the pages */
	data(SPILL_OP_READ, 2, 200, 100);  /* past the end of a 256-page extent */
	data(SPILL_OP_INVALIDATE, 1, 1, 1);
	data(SPILL_OP_READ, 1, 0, 1);
	data(SPILL_OP_PING, 0, 0, 0);
	data(SPILL_OP_KEY, 1, 0, 0);       /* no RDMA here: ENOTSUP */
	data(SPILL_OP_ALLOC, 0, 0, 0);
	data(SPILL_OP_FREE, 2, 0, 0);
	data(SPILL_OP_READ, 2, 0, 1);      /* freed */
	data(SPILL_OP_READ, 99, 0, 1);     /* never existed */
}

static void ctrl_session(void)
{
	Spillway__Stats stats = SPILLWAY__STATS__INIT;
	req(SPILLWAY__CTRL__MSG_STATS, &stats);
	Spillway__AdminStatus as = SPILLWAY__ADMIN_STATUS__INIT;
	req(SPILLWAY__CTRL__MSG_ADMIN_STATUS, &as);
	Spillway__AdminClientSet cs = SPILLWAY__ADMIN_CLIENT_SET__INIT;
	cs.name = "fz";
	cs.set_priority = 1;
	cs.priority = 5;
	cs.set_limit = 1;
	cs.limit_bytes = 4u << 20;
	req(SPILLWAY__CTRL__MSG_ADMIN_CLIENT_SET, &cs);
	cs.name = "other";
	cs.set_reservation = 1;
	cs.reservation_bytes = 2u << 20;
	req(SPILLWAY__CTRL__MSG_ADMIN_CLIENT_SET, &cs);
	Spillway__AdminReclaim ar = SPILLWAY__ADMIN_RECLAIM__INIT;
	ar.name = "fz";
	ar.bytes = 1u << 20;
	ar.deadline_ms = 100;
	req(SPILLWAY__CTRL__MSG_ADMIN_RECLAIM, &ar); /* a Reclaim comes back to us */
	Spillway__ReclaimReply rr = SPILLWAY__RECLAIM_REPLY__INIT;
	rr.reclaim_id = 1;
	rr.freed_bytes = 1u << 20;
	req(SPILLWAY__CTRL__MSG_RECLAIM_REPLY, &rr);
	Spillway__ClusterInfo ci = SPILLWAY__CLUSTER_INFO__INIT;
	req(SPILLWAY__CTRL__MSG_CLUSTER_INFO, &ci);
	Spillway__AdminExportCreate ec = SPILLWAY__ADMIN_EXPORT_CREATE__INIT;
	ec.name = "disk0";
	ec.size_bytes = 1u << 20;
	req(SPILLWAY__CTRL__MSG_ADMIN_EXPORT_CREATE, &ec);
	Spillway__AdminExportList el = SPILLWAY__ADMIN_EXPORT_LIST__INIT;
	req(SPILLWAY__CTRL__MSG_ADMIN_EXPORT_LIST, &el);
	Spillway__AdminExportDelete ed = SPILLWAY__ADMIN_EXPORT_DELETE__INIT;
	ed.name = "disk0";
	req(SPILLWAY__CTRL__MSG_ADMIN_EXPORT_DELETE, &ed);
	ec.name = "disk1";
	ec.client = "fz";
	req(SPILLWAY__CTRL__MSG_ADMIN_EXPORT_CREATE, &ec); /* left for teardown */
	Spillway__AdminDrain dr = SPILLWAY__ADMIN_DRAIN__INIT;
	dr.drain = 1;
	req(SPILLWAY__CTRL__MSG_ADMIN_DRAIN, &dr);
	Spillway__AllocExtent ae = SPILLWAY__ALLOC_EXTENT__INIT;
	ae.count = 1;
	ae.node = -1;
	req(SPILLWAY__CTRL__MSG_ALLOC_EXTENT, &ae); /* refused: draining */
	dr.drain = 0;
	req(SPILLWAY__CTRL__MSG_ADMIN_DRAIN, &dr);
	Spillway__AdminClusterStatus cst = SPILLWAY__ADMIN_CLUSTER_STATUS__INIT;
	req(SPILLWAY__CTRL__MSG_ADMIN_CLUSTER_STATUS, &cst);
	Spillway__AdminEvents ev = SPILLWAY__ADMIN_EVENTS__INIT;
	req(SPILLWAY__CTRL__MSG_ADMIN_EVENTS, &ev);
	Spillway__NodeStats ns = SPILLWAY__NODE_STATS__INIT;
	ns.capacity_bytes = 8u << 20;
	Spillway__NodeStats *nv[1] = { &ns };
	Spillway__ServerInfo si = SPILLWAY__SERVER_INFO__INIT;
	si.url = "tcp://10.0.0.5:7707";
	si.server_id = "peer:1";
	si.capacity_bytes = 8u << 20;
	si.used_bytes = 7u << 20;
	si.up = 1;
	si.n_nodes = 1;
	si.nodes = nv;
	Spillway__ClientStats cl = SPILLWAY__CLIENT_STATS__INIT;
	cl.name = "fz";
	cl.used_bytes = 7u << 20;
	Spillway__ClientStats *clv[1] = { &cl };
	Spillway__PeerReport pr = SPILLWAY__PEER_REPORT__INIT;
	pr.server = &si;
	pr.n_clients = 1;
	pr.clients = clv;
	req(SPILLWAY__CTRL__MSG_PEER_REPORT, &pr);
	uint64_t ids[2] = { 1, 77 };
	Spillway__FreeExtent fe = SPILLWAY__FREE_EXTENT__INIT;
	fe.n_extent_ids = 2;
	fe.extent_ids = ids;
	req(SPILLWAY__CTRL__MSG_FREE_EXTENT, &fe);
	Spillway__Register reg = SPILLWAY__REGISTER__INIT;
	reg.name = "again";
	req(SPILLWAY__CTRL__MSG_REGISTER, &reg); /* already registered */
}

/* Hello, Register and an AdminStatus, as a client sends them. */
static void handshake_stream(const char *name, int bad_mac)
{
	static uint8_t nonce[32] = { 9, 9, 9 };
	Spillway__Hello hello = SPILLWAY__HELLO__INIT;
	hello.version = SPILL_WIRE_VERSION;
	hello.software = "seed";
	hello.client_nonce.data = nonce;
	hello.client_nonce.len = sizeof(nonce);
	req(SPILLWAY__CTRL__MSG_HELLO, &hello);
	if (bad_mac) {
		Spillway__Auth a = SPILLWAY__AUTH__INIT;
		a.mac.data = nonce;
		a.mac.len = sizeof(nonce);
		req(SPILLWAY__CTRL__MSG_AUTH, &a);
	}
	Spillway__Register reg = SPILLWAY__REGISTER__INIT;
	reg.name = (char *)name;
	reg.priority = 10;
	reg.reservation_bytes = 1u << 20;
	reg.limit_bytes = 4u << 20;
	req(SPILLWAY__CTRL__MSG_REGISTER, &reg);
	Spillway__AllocExtent ae = SPILLWAY__ALLOC_EXTENT__INIT;
	ae.count = 3;
	ae.node = -1;
	req(SPILLWAY__CTRL__MSG_ALLOC_EXTENT, &ae);
	Spillway__AdminStatus as = SPILLWAY__ADMIN_STATUS__INIT;
	req(SPILLWAY__CTRL__MSG_ADMIN_STATUS, &as);
}

#define MODE_HELLO     1
#define MODE_CLIENTKEY 2
#define MODE_ADMINKEY  3
#define MODE_KEYS      4
#define MODE_REGISTER  8
#define MODE_RESEAL    16
#define MODE_PIECE_1   (1 << 5)
#define MODE_PIECE_16  (2 << 5)
#define MODE_PIECE_256 (3 << 5)
#define MODE_ARBITER   128

static void server_seed(const char *dir, const char *name, uint8_t mode)
{
	seed_stream_put(dir, name, mode, &st);
	st.len = 0;
}

void seeds_server_conn(const char *dir)
{
	for (size_t i = 0; i < sizeof(pattern); i++)
		pattern[i] = (uint8_t)(i * 13 + 5);
	const uint8_t reg = MODE_REGISTER | MODE_RESEAL;

	data_session();
	server_seed(dir, "data-open", MODE_HELLO | reg);
	data_session();
	server_seed(dir, "data-clientkey", MODE_CLIENTKEY | reg);
	ctrl_session();
	server_seed(dir, "ctrl-open", MODE_HELLO | reg);
	ctrl_session();
	server_seed(dir, "ctrl-clientkey", MODE_CLIENTKEY | reg);
	ctrl_session();
	server_seed(dir, "ctrl-adminkey", MODE_ADMINKEY | reg);
	ctrl_session();
	server_seed(dir, "ctrl-arbiter", MODE_ADMINKEY | reg | MODE_ARBITER);
	ctrl_session();
	server_seed(dir, "ctrl-unregistered", MODE_HELLO | MODE_RESEAL);
	data_session();
	server_seed(dir, "data-stop", MODE_ADMINKEY | MODE_KEYS | reg | MODE_PIECE_256);

	handshake_stream("raw", 0);
	server_seed(dir, "handshake", 0);
	handshake_stream("raw", 1);
	server_seed(dir, "handshake-badmac", MODE_KEYS);
	handshake_stream("raw", 0);
	server_seed(dir, "handshake-pieces-1", MODE_PIECE_1);
	handshake_stream("raw", 0);
	server_seed(dir, "handshake-keys", MODE_KEYS);
	handshake_stream("bad name!", 0);
	server_seed(dir, "handshake-badname", 0);

	data(SPILL_OP_PING, 0, 0, 0);
	data(SPILL_OP_READ, 1, 0, 2);
	data(SPILL_OP_WRITE, 1, 0, 8);
	server_seed(dir, "pieces-16", MODE_HELLO | reg | MODE_PIECE_16);
	data(SPILL_OP_WRITE, 1, 0, 8);
	data(SPILL_OP_READ, 1, 0, 8);
	server_seed(dir, "pieces-256", MODE_HELLO | reg | MODE_PIECE_256);

	/* Near misses. */
	data(SPILL_OP_PING, 0, 0, 0);
	st.bytes[st.len - 1] ^= 1; /* CRC */
	server_seed(dir, "bad-crc", MODE_HELLO | MODE_REGISTER);
	seed_frame(&st, SPILL_OP_PING | SPILL_OP_REPLY, 0, 1, 0, 0, 0, 0, NULL, 0);
	server_seed(dir, "reply-frame", MODE_HELLO | reg);
	data(SPILL_OP_WRITE, 1, 0, 8);
	st.len -= 4 * SPILL_PAGE_SIZE;
	server_seed(dir, "cut-write", MODE_HELLO | reg);
	for (int i = 0; i < 24; i++)
		data(SPILL_OP_PING, 0, 0, 0);
	server_seed(dir, "inflight", MODE_HELLO | reg);
	data(SPILL_OP_READ, 1, 0, 1);
	server_seed(dir, "data-before-hello", MODE_RESEAL);
}

/* --- fuzz_client_rx ------------------------------------------------------ */

/* The harness's client takes slot 0 for every synchronous call (generation
 * g, g+1, ...) and slots 0-3 for its four asynchronous requests; request
 * id = generation << 16 | slot. */
#define RID(gen, slot) (((uint64_t)(gen) << 16) | (slot))

static void reply(uint64_t req_id, Spillway__Ctrl__MsgCase k, void *msg)
{
	Spillway__Ctrl m = SPILLWAY__CTRL__INIT;
	m.msg_case = k;
	m.hello = msg;
	seed_ctrl(&st, 1, req_id, &m);
}

static void unsolicited_reclaim(uint64_t id)
{
	Spillway__Reclaim r = SPILLWAY__RECLAIM__INIT;
	r.reclaim_id = id;
	r.bytes = 1u << 20;
	r.deadline_ms = 1000;
	Spillway__Ctrl m = SPILLWAY__CTRL__INIT;
	m.msg_case = SPILLWAY__CTRL__MSG_RECLAIM;
	m.reclaim = &r;
	seed_ctrl(&st, 0, 0, &m);
}

/* The server's side of the harness's whole session. auth: answer Hello with
 * auth_required and a (necessarily wrong) AuthReply. */
static void client_session(int registers, int auth_required, int auth_claimed, int floods)
{
	static uint8_t nonce[32] = { 7, 7, 7 }, token[16] = { 1, 2, 3 };
	unsigned g = 1;
	Spillway__HelloReply hr = SPILLWAY__HELLO_REPLY__INIT;
	hr.version = SPILL_WIRE_VERSION;
	hr.auth_required = auth_claimed;
	hr.server_nonce.data = nonce;
	hr.server_nonce.len = sizeof(nonce);
	hr.max_inflight = 64;
	hr.max_batch_pages = SPILL_MAX_BATCH_PAGES;
	hr.extent_bytes = 1u << 20;
	hr.server_id = "fake";
	reply(RID(g++, 0), SPILLWAY__CTRL__MSG_HELLO_REPLY, &hr);
	if (auth_required) {
		Spillway__AuthReply ar = SPILLWAY__AUTH_REPLY__INIT;
		ar.mac.data = nonce;
		ar.mac.len = sizeof(nonce);
		reply(RID(g++, 0), SPILLWAY__CTRL__MSG_AUTH_REPLY, &ar);
	}
	if (registers) {
		Spillway__ExtentInfo e = SPILLWAY__EXTENT_INFO__INIT;
		e.extent_id = 3;
		e.npages = 256;
		Spillway__ExtentInfo *ev[1] = { &e };
		Spillway__RegisterReply rr = SPILLWAY__REGISTER_REPLY__INIT;
		rr.client_id = 7;
		rr.token.data = token;
		rr.token.len = sizeof(token);
		rr.resumed = 1;
		rr.n_extents = 1;
		rr.extents = ev;
		reply(RID(g++, 0), SPILLWAY__CTRL__MSG_REGISTER_REPLY, &rr);
	}
	for (int i = 0; i < floods; i++)
		unsolicited_reclaim((uint64_t)i + 1);
	Spillway__ExtentInfo e = SPILLWAY__EXTENT_INFO__INIT;
	e.extent_id = 5;
	e.npages = 256;
	Spillway__ExtentInfo *ev[1] = { &e };
	Spillway__AllocExtentReply aer = SPILLWAY__ALLOC_EXTENT_REPLY__INIT;
	aer.n_extents = 1;
	aer.extents = ev;
	reply(RID(g++, 0), SPILLWAY__CTRL__MSG_ALLOC_EXTENT_REPLY, &aer);
	/* Synchronous 2-page READ. */
	seed_frame(&st, SPILL_OP_READ | SPILL_OP_REPLY, 0, RID(g++, 0), 5, 0, 2, 0, pattern,
		   2 * SPILL_PAGE_SIZE);
	unsolicited_reclaim(100);
	/* The four asynchronous ones: READ (absent, with the map), WRITE,
	 * INVALIDATE, PING; slot 0 is at generation g, slots 1-3 at 1. */
	seed_frame(&st, SPILL_OP_READ | SPILL_OP_REPLY, SPILL_WF_PRESENT_MAP, RID(g++, 0), 5, 0,
		   1, SPILL_ST_ABSENT, pattern, SPILL_PAGE_SIZE + SPILL_PRESENT_MAP_BYTES);
	seed_frame(&st, SPILL_OP_WRITE | SPILL_OP_REPLY, 0, RID(1, 1), 5, 1, 1, 0, NULL, 0);
	seed_frame(&st, SPILL_OP_INVALIDATE | SPILL_OP_REPLY, 0, RID(1, 2), 5, 2, 1, 0, NULL, 0);
	seed_frame(&st, SPILL_OP_PING | SPILL_OP_REPLY, 0, RID(1, 3), 0, 0, 0, 0, NULL, 0);
	/* Completions pushed slots 0..3 on the free stack: slot 3 is next. */
	Spillway__NodeStats ns = SPILLWAY__NODE_STATS__INIT;
	Spillway__NodeStats *nv[1] = { &ns };
	Spillway__ClientStats cs = SPILLWAY__CLIENT_STATS__INIT;
	cs.name = "fz";
	Spillway__StatsReply sr = SPILLWAY__STATS_REPLY__INIT;
	sr.capacity_bytes = 1u << 30;
	sr.n_nodes = 1;
	sr.nodes = nv;
	sr.self = &cs;
	reply(RID(2, 3), SPILLWAY__CTRL__MSG_STATS_REPLY, &sr);
	Spillway__FreeExtentReply fr = SPILLWAY__FREE_EXTENT_REPLY__INIT;
	fr.freed = 1;
	reply(RID(3, 3), SPILLWAY__CTRL__MSG_FREE_EXTENT_REPLY, &fr);
}

#define RX_KEY      1
#define RX_REGISTER 2
#define RX_RESEAL   4
#define RX_PIECES   8

void seeds_client_rx(const char *dir)
{
	for (size_t i = 0; i < sizeof(pattern); i++)
		pattern[i] = (uint8_t)(i * 13 + 5);

	client_session(1, 0, 0, 0);
	seed_stream_put(dir, "session", RX_REGISTER, &st);
	seed_stream_put(dir, "session-pieces", RX_REGISTER | RX_PIECES, &st);
	seed_stream_put(dir, "session-resealed", RX_REGISTER | RX_RESEAL, &st);
	st.len = 0;
	client_session(0, 0, 0, 0);
	seed_stream_put(dir, "session-unregistered", 0, &st);
	st.len = 0;
	/* A keyed client told "no auth needed" must not believe it. */
	client_session(1, 0, 0, 0);
	seed_stream_put(dir, "auth-downgrade", RX_KEY | RX_REGISTER, &st);
	st.len = 0;
	client_session(1, 1, 1, 0);
	seed_stream_put(dir, "auth-bad-proof", RX_KEY | RX_REGISTER, &st);
	st.len = 0;
	client_session(1, 0, 0, 300);
	seed_stream_put(dir, "notify-flood", RX_REGISTER, &st);
	st.len = 0;
	client_session(1, 0, 0, 0);
	st.bytes[20] ^= 0x40; /* inside the first header: checksum off */
	seed_stream_put(dir, "bad-crc", RX_REGISTER, &st);
	st.len = 0;
}
