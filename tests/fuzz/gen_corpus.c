/* SPDX-License-Identifier: MIT */
/*
 * Seed corpora for every fuzz target (gen_corpus.h). This file holds the
 * command line, the codec seeds for fuzz_frame and fuzz_ctrl (one valid,
 * sealed frame per op and reply shape, one valid packed message per Ctrl
 * type, plus a few near-misses) and, for fuzz_nbd, a few whole NBD client
 * conversations. The fuzz build (-DSPILL_FUZZ=ON) builds it;
 * tests/run runs it once with one seeds-NAME directory per fuzz_NAME target
 * and hands each fuzzer its seeds:
 *
 *   build-fuzz/gen_corpus seeds-frame seeds-ctrl seeds-url ...
 *   build-fuzz/fuzz_frame -max_len=8300 corpus-frame seeds-frame
 *
 * A name without a generator is an error, so a new target cannot go
 * without seeds unnoticed.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ctrl.h"
#include "frame.h"
#include "gen_corpus.h"

static const char *frame_dir, *ctrl_dir;
static int nfiles;

void seed_put(const char *dir, const char *name, const void *a, size_t alen,
	      const void *b, size_t blen)
{
	if (!dir)
		return;
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "wb");
	if (!f) {
		perror(path);
		exit(1);
	}
	if ((alen && fwrite(a, 1, alen, f) != alen) || (blen && fwrite(b, 1, blen, f) != blen)) {
		perror(path);
		exit(1);
	}
	fclose(f);
	nfiles++;
}

static void put(const char *dir, const char *name, const void *a, size_t alen,
		const void *b, size_t blen)
{
	seed_put(dir, name, a, alen, b, blen);
}

static uint8_t payload[2 * SPILL_PAGE_SIZE + SPILL_PRESENT_MAP_BYTES];

static void frame(const char *name, uint16_t op, uint8_t flags, uint16_t npages,
		  uint16_t status, uint32_t plen)
{
	struct frame_hdr h = {
		.version = SPILL_WIRE_VERSION, .flags = flags, .op = op,
		.req_id = 0x1234, .extent_id = 7, .page = 3, .npages = npages,
		.status = status, .payload_len = plen,
	};
	struct spill_wire_hdr w;
	frame_hdr_pack(&h, &w);
	struct iovec iov = { payload, plen };
	frame_seal(&w, &iov, 1);
	put(frame_dir, name, &w, sizeof(w), payload, plen);
}

static void ctrl(const char *name, Spillway__Ctrl *m)
{
	uint8_t buf[SPILL_MAX_CTRL_PAYLOAD];
	int n = ctrl_pack(m, buf, sizeof(buf));
	if (n < 0) {
		fprintf(stderr, "%s: ctrl_pack %d\n", name, n);
		exit(1);
	}
	const char *why = NULL;
	if (ctrl_validate(m, &why))
		fprintf(stderr, "note: seed %s is invalid on purpose (%s)\n", name, why);
	put(ctrl_dir, name, buf, (size_t)n, NULL, 0);
	/* The same message as a CTRL frame, for fuzz_frame. */
	char fname[64];
	snprintf(fname, sizeof(fname), "ctrl-%s", name);
	struct frame_hdr h = { .version = SPILL_WIRE_VERSION, .op = SPILL_OP_CTRL,
			       .req_id = 9, .payload_len = (uint32_t)n };
	struct spill_wire_hdr w;
	frame_hdr_pack(&h, &w);
	struct iovec iov = { buf, (size_t)n };
	frame_seal(&w, &iov, 1);
	put(frame_dir, fname, &w, sizeof(w), buf, (size_t)n);
}

static ProtobufCBinaryData bin(const uint8_t *p, size_t n)
{
	return (ProtobufCBinaryData){ .len = n, .data = (uint8_t *)p };
}

/* --- fuzz_nbd: what an NBD client sends, start to end ------------------- */

static uint8_t nbd_seed[4096];
static size_t nbd_len;

static void nbd_bytes(const void *p, size_t n)
{
	if (n)
		memcpy(nbd_seed + nbd_len, p, n);
	nbd_len += n;
}

static void nbd_be(uint64_t v, int n)
{
	for (int i = n - 1; i >= 0; i--) {
		uint8_t b = (uint8_t)(v >> (8 * i));
		nbd_bytes(&b, 1);
	}
}

static void nbd_opt(uint32_t opt, const void *data, uint32_t len)
{
	nbd_be(0x49484156454f5054ull, 8);
	nbd_be(opt, 4);
	nbd_be(len, 4);
	nbd_bytes(data, len);
}

static void nbd_req(uint16_t flags, uint16_t type, uint64_t off, uint32_t len)
{
	nbd_be(0x25609513u, 4);
	nbd_be(flags, 2);
	nbd_be(type, 2);
	nbd_be(0x1122334455667788ull, 8);
	nbd_be(off, 8);
	nbd_be(len, 4);
}

static const char *nbd_dir;

static void nbd_put(const char *name)
{
	put(nbd_dir, name, nbd_seed, nbd_len, NULL, 0);
	nbd_len = 0;
}

void seeds_nbd(const char *dir)
{
	nbd_dir = dir;
	static const uint8_t go_d[] = { 0, 0, 0, 1, 'd', 0, 2, 0, 3, 0, 1 };
	static uint8_t data[512];
	memset(data, 0xa5, sizeof(data));
	/* GO, then every command. */
	nbd_be(3, 4);
	nbd_opt(7, go_d, sizeof(go_d));
	nbd_req(0, 0, 4096, 4096);
	nbd_req(1, 1, 512, sizeof(data));
	nbd_bytes(data, sizeof(data));
	nbd_req(0, 3, 0, 0);
	nbd_req(0, 4, 8192, 8192);
	nbd_req(2, 6, 0, 4096);
	nbd_req(0, 2, 0, 0);
	nbd_put("go-all-commands");
	/* LIST, INFO, an unsupported option, then EXPORT_NAME and a read. */
	nbd_be(1, 4);
	nbd_opt(3, NULL, 0);
	nbd_opt(6, go_d, sizeof(go_d));
	nbd_opt(8, NULL, 0);
	nbd_opt(1, "d", 1);
	nbd_req(0, 0, 0, 512);
	nbd_put("list-info-export-name");
	/* Out of bounds and over the maximum. */
	nbd_be(3, 4);
	nbd_opt(7, go_d, sizeof(go_d));
	nbd_req(0, 0, (1u << 20) - 512, 4096);
	nbd_req(0, 0, 0, (32u << 20) + 1);
	nbd_req(0, 1, 1u << 20, 512);
	nbd_bytes(data, sizeof(data));
	nbd_put("bounds");
	/* ABORT. */
	nbd_be(3, 4);
	nbd_opt(2, NULL, 0);
	nbd_put("abort");
}

void seeds_codec(const char *fdir, const char *cdir)
{
	frame_dir = fdir;
	ctrl_dir = cdir;
	for (size_t i = 0; i < sizeof(payload); i++)
		payload[i] = (uint8_t)(i * 31 + 7);

	/* Requests. */
	frame("ping", SPILL_OP_PING, 0, 0, 0, 0);
	frame("read-1", SPILL_OP_READ, 0, 1, 0, 0);
	frame("read-512", SPILL_OP_READ, 0, 512, 0, 0);
	frame("write-1", SPILL_OP_WRITE, 0, 1, 0, SPILL_PAGE_SIZE);
	frame("write-2", SPILL_OP_WRITE, 0, 2, 0, 2 * SPILL_PAGE_SIZE);
	frame("invalidate-8", SPILL_OP_INVALIDATE, 0, 8, 0, 0);
	frame("alloc", SPILL_OP_ALLOC, 0, 0, 0, 0);
	frame("free", SPILL_OP_FREE, 0, 0, 0, 0);
	frame("key", SPILL_OP_KEY, 0, 0, 0, 0);
	frame("ctrl-raw", SPILL_OP_CTRL, 0, 0, 0, 16);
	/* Replies. */
	frame("r-ping", SPILL_OP_PING | SPILL_OP_REPLY, 0, 0, 0, 0);
	frame("r-read-2", SPILL_OP_READ | SPILL_OP_REPLY, 0, 2, 0, 2 * SPILL_PAGE_SIZE);
	frame("r-read-2-map", SPILL_OP_READ | SPILL_OP_REPLY, SPILL_WF_PRESENT_MAP, 2,
	      SPILL_ST_ABSENT, 2 * SPILL_PAGE_SIZE + SPILL_PRESENT_MAP_BYTES);
	frame("r-read-err", SPILL_OP_READ | SPILL_OP_REPLY, 0, 2, SPILL_ST_ERANGE, 0);
	frame("r-write", SPILL_OP_WRITE | SPILL_OP_REPLY, 0, 1, SPILL_ST_ENOSPC, 0);
	frame("r-invalidate", SPILL_OP_INVALIDATE | SPILL_OP_REPLY, 0, 4, 0, 0);
	frame("r-alloc", SPILL_OP_ALLOC | SPILL_OP_REPLY, 0, 0, 0, 0);
	frame("r-ctrl-empty", SPILL_OP_CTRL | SPILL_OP_REPLY, 0, 0, 0, 0);
	/* Near misses. */
	frame("bad-write-len", SPILL_OP_WRITE, 0, 2, 0, SPILL_PAGE_SIZE);
	frame("bad-read-map", SPILL_OP_READ | SPILL_OP_REPLY, 0, 1, 0,
	      SPILL_PAGE_SIZE + SPILL_PRESENT_MAP_BYTES);
	frame("bad-status", SPILL_OP_PING | SPILL_OP_REPLY, 0, 0, SPILL_ST_MAX, 0);

	uint8_t nonce[32], token[16], mac[32];
	memset(nonce, 0x5a, sizeof(nonce));
	memset(token, 0x77, sizeof(token));
	memset(mac, 0x33, sizeof(mac));
	Spillway__Ctrl m = SPILLWAY__CTRL__INIT;

	Spillway__Hello hello = SPILLWAY__HELLO__INIT;
	hello.version = 1;
	hello.software = "libspillway 0.1";
	hello.client_nonce = bin(nonce, 32);
	m.msg_case = SPILLWAY__CTRL__MSG_HELLO;
	m.hello = &hello;
	ctrl("hello", &m);

	Spillway__HelloReply hr = SPILLWAY__HELLO_REPLY__INIT;
	hr.version = 1;
	hr.auth_required = 1;
	hr.server_nonce = bin(nonce, 32);
	hr.max_inflight = 64;
	hr.max_batch_pages = 512;
	hr.extent_bytes = 1 << 30;
	hr.server_id = "srv-1";
	m.msg_case = SPILLWAY__CTRL__MSG_HELLO_REPLY;
	m.hello_reply = &hr;
	ctrl("hello_reply", &m);

	Spillway__Auth auth = SPILLWAY__AUTH__INIT;
	auth.mac = bin(mac, 32);
	m.msg_case = SPILLWAY__CTRL__MSG_AUTH;
	m.auth = &auth;
	ctrl("auth", &m);
	Spillway__AuthReply ar = SPILLWAY__AUTH_REPLY__INIT;
	ar.mac = bin(mac, 32);
	m.msg_case = SPILLWAY__CTRL__MSG_AUTH_REPLY;
	m.auth_reply = &ar;
	ctrl("auth_reply", &m);

	Spillway__Register reg = SPILLWAY__REGISTER__INIT;
	reg.name = "db1";
	reg.priority = -5;
	reg.reservation_bytes = 1 << 20;
	reg.limit_bytes = 1 << 30;
	reg.token = bin(token, 16);
	m.msg_case = SPILLWAY__CTRL__MSG_REGISTER;
	m.register_ = &reg;
	ctrl("register", &m);

	Spillway__ExtentInfo e1 = SPILLWAY__EXTENT_INFO__INIT, e2 = SPILLWAY__EXTENT_INFO__INIT;
	e1.extent_id = 1;
	e1.npages = 262144;
	e2.extent_id = 2;
	e2.npages = 262144;
	e2.node = 1;
	Spillway__ExtentInfo *ev[2] = { &e1, &e2 };
	Spillway__RegisterReply rr = SPILLWAY__REGISTER_REPLY__INIT;
	rr.client_id = 3;
	rr.token = bin(token, 16);
	rr.resumed = 1;
	rr.n_extents = 2;
	rr.extents = ev;
	rr.priority = 10;
	m.msg_case = SPILLWAY__CTRL__MSG_REGISTER_REPLY;
	m.register_reply = &rr;
	ctrl("register_reply", &m);

	Spillway__AllocExtent ae = SPILLWAY__ALLOC_EXTENT__INIT;
	ae.count = 4;
	ae.node = -1;
	m.msg_case = SPILLWAY__CTRL__MSG_ALLOC_EXTENT;
	m.alloc_extent = &ae;
	ctrl("alloc_extent", &m);
	Spillway__AllocExtentReply aer = SPILLWAY__ALLOC_EXTENT_REPLY__INIT;
	aer.n_extents = 2;
	aer.extents = ev;
	m.msg_case = SPILLWAY__CTRL__MSG_ALLOC_EXTENT_REPLY;
	m.alloc_extent_reply = &aer;
	ctrl("alloc_extent_reply", &m);

	uint64_t ids[3] = { 1, 2, UINT64_MAX };
	Spillway__FreeExtent fe = SPILLWAY__FREE_EXTENT__INIT;
	fe.n_extent_ids = 3;
	fe.extent_ids = ids;
	m.msg_case = SPILLWAY__CTRL__MSG_FREE_EXTENT;
	m.free_extent = &fe;
	ctrl("free_extent", &m);
	Spillway__FreeExtentReply fer = SPILLWAY__FREE_EXTENT_REPLY__INIT;
	fer.freed = 3;
	m.msg_case = SPILLWAY__CTRL__MSG_FREE_EXTENT_REPLY;
	m.free_extent_reply = &fer;
	ctrl("free_extent_reply", &m);

	Spillway__Stats st = SPILLWAY__STATS__INIT;
	m.msg_case = SPILLWAY__CTRL__MSG_STATS;
	m.stats = &st;
	ctrl("stats", &m);

	Spillway__NodeStats ns = SPILLWAY__NODE_STATS__INIT;
	ns.node = 0;
	ns.capacity_bytes = 1 << 30;
	ns.used_bytes = 1 << 20;
	Spillway__NodeStats *nv[1] = { &ns };
	Spillway__ClientStats cs = SPILLWAY__CLIENT_STATS__INIT;
	cs.name = "db1";
	cs.client_id = 3;
	cs.priority = 10;
	cs.used_bytes = 1 << 20;
	cs.extents = 1;
	cs.connections = 2;
	Spillway__ClientStats *cv[1] = { &cs };
	Spillway__StatsReply sr = SPILLWAY__STATS_REPLY__INIT;
	sr.capacity_bytes = 1 << 30;
	sr.used_bytes = 1 << 20;
	sr.n_nodes = 1;
	sr.nodes = nv;
	sr.self = &cs;
	m.msg_case = SPILLWAY__CTRL__MSG_STATS_REPLY;
	m.stats_reply = &sr;
	ctrl("stats_reply", &m);

	Spillway__AdminStatus as = SPILLWAY__ADMIN_STATUS__INIT;
	m.msg_case = SPILLWAY__CTRL__MSG_ADMIN_STATUS;
	m.admin_status = &as;
	ctrl("admin_status", &m);
	Spillway__AdminStatusReply asr = SPILLWAY__ADMIN_STATUS_REPLY__INIT;
	asr.server_id = "srv-1";
	asr.version = "0.1.0";
	asr.uptime_ms = 1000;
	asr.n_nodes = 1;
	asr.nodes = nv;
	asr.n_clients = 1;
	asr.clients = cv;
	m.msg_case = SPILLWAY__CTRL__MSG_ADMIN_STATUS_REPLY;
	m.admin_status_reply = &asr;
	ctrl("admin_status_reply", &m);

	Spillway__AdminClientSet acs = SPILLWAY__ADMIN_CLIENT_SET__INIT;
	acs.name = "db1";
	acs.set_priority = 1;
	acs.priority = 100;
	acs.set_limit = 1;
	acs.limit_bytes = 1 << 30;
	m.msg_case = SPILLWAY__CTRL__MSG_ADMIN_CLIENT_SET;
	m.admin_client_set = &acs;
	ctrl("admin_client_set", &m);
	Spillway__AdminClientSetReply acsr = SPILLWAY__ADMIN_CLIENT_SET_REPLY__INIT;
	acsr.client = &cs;
	m.msg_case = SPILLWAY__CTRL__MSG_ADMIN_CLIENT_SET_REPLY;
	m.admin_client_set_reply = &acsr;
	ctrl("admin_client_set_reply", &m);

	Spillway__Reclaim rc = SPILLWAY__RECLAIM__INIT;
	rc.reclaim_id = 1;
	rc.bytes = 1 << 30;
	rc.deadline_ms = 500;
	m.msg_case = SPILLWAY__CTRL__MSG_RECLAIM;
	m.reclaim = &rc;
	ctrl("reclaim", &m);
	Spillway__ReclaimReply rcr = SPILLWAY__RECLAIM_REPLY__INIT;
	rcr.reclaim_id = 1;
	rcr.freed_bytes = 1 << 29;
	m.msg_case = SPILLWAY__CTRL__MSG_RECLAIM_REPLY;
	m.reclaim_reply = &rcr;
	ctrl("reclaim_reply", &m);

	Spillway__Error err = SPILLWAY__ERROR__INIT;
	err.status = SPILL_ST_EDQUOT;
	err.message = "over limit";
	m.msg_case = SPILLWAY__CTRL__MSG_ERROR;
	m.error = &err;
	ctrl("error", &m);

	/* Near misses: one field off. */
	hello.client_nonce = bin(nonce, 31);
	m.msg_case = SPILLWAY__CTRL__MSG_HELLO;
	m.hello = &hello;
	ctrl("bad-hello-nonce", &m);
	reg.name = "bad name";
	m.msg_case = SPILLWAY__CTRL__MSG_REGISTER;
	m.register_ = &reg;
	ctrl("bad-register-name", &m);

}

int main(int argc, char **argv)
{
	static const struct {
		const char *name;
		void (*gen)(const char *dir);
	} gens[] = {
		{ "config", seeds_config },
		{ "url", seeds_url },
		{ "server_conn", seeds_server_conn },
		{ "client_rx", seeds_client_rx },
		{ "nbd", seeds_nbd },
	};
	const char *fdir = NULL, *cdir = NULL;
	if (argc < 2) {
		fprintf(stderr, "usage: %s seeds-NAME... (one per fuzz_NAME target)\n", argv[0]);
		return 2;
	}
	for (int i = 1; i < argc; i++) {
		const char *base = strrchr(argv[i], '/');
		base = base ? base + 1 : argv[i];
		if (strncmp(base, "seeds-", 6)) {
			fprintf(stderr, "%s: expected a directory named seeds-NAME\n", argv[i]);
			return 2;
		}
		const char *name = base + 6;
		mkdir(argv[i], 0755);
		if (!strcmp(name, "frame")) {
			fdir = argv[i];
			continue;
		}
		if (!strcmp(name, "ctrl")) {
			cdir = argv[i];
			continue;
		}
		size_t k = 0;
		while (k < sizeof(gens) / sizeof(gens[0]) && strcmp(gens[k].name, name))
			k++;
		if (k == sizeof(gens) / sizeof(gens[0])) {
			fprintf(stderr, "%s: no seed generator for fuzz_%s\n", argv[i], name);
			return 2;
		}
		gens[k].gen(argv[i]);
	}
	if (fdir || cdir)
		seeds_codec(fdir, cdir);
	printf("wrote %d seeds\n", nfiles);
	return 0;
}
