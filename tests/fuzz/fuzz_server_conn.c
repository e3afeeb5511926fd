/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for spillwayd's connection state machine: bytes in,
 * replies out, against a real pool, registry, cluster state and NBD export
 * table (every server source but main.c is linked in).
 *
 * Each input gets fresh cluster state, NBD export table, arbiter and worker
 * event loop, driven from this thread, and one connection made with
 * conn_start() on one end of a socketpair. The harness writes the input to
 * the other end, runs the loop until the input is consumed, then closes its
 * side and runs the loop until the connection is gone. The 8 MiB pool, the
 * registry and the connection slab are made once (a registry's teardown
 * waits for RCU grace periods, ~90 ms): after each input the registry
 * expires every identity (grace period 0), operator quotas are reset, and
 * every byte of the pool must have come back.
 *
 * Input: byte 0 is a mode, the rest is the stream.
 *   bits 0-1  handshake the harness performs first (valid frames, waiting
 *             for each reply): 0 none; 1 Hello; 2 Hello + Auth with the
 *             clients' key; 3 Hello + Auth with the operator key
 *   bit 2     the server has keys; with handshakes 2 and 3 (which always
 *             have them), the input ends with a server stop (conn_drain, as
 *             SIGTERM does) instead of the peer closing first
 *   bit 3     after the handshake, Register as "fz" and allocate two
 *             extents (so data requests reach real pages)
 *   bit 4     reseal: fix the CRC of every whole frame in the stream; with
 *             bit 3, extent ids 1 and 2 in it also become the ids of those
 *             two extents (whatever ids the registry hands out)
 *   bits 5-6  write the stream in pieces of 1, 16 or 256 bytes (0: at once),
 *             running the loop between pieces
 *   bit 7     this server is the cluster's arbiter (PeerReport and friends)
 *
 * Checked: nothing crashes, overruns or leaks; every byte the server sends
 * is a well-formed, correctly checksummed reply (or unsolicited control
 * message) until it closes; a connection whose peer has closed is freed (it
 * never sits idle); the pool is whole again after teardown.
 */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>
#include <urcu.h>

#include "admission.h"
#include "arbiter.h"
#include "auth.h"
#include "cluster.h"
#include "conn.h"
#include "stream.h"
#include "ctrl.h"
#include "fuzz_check.h"
#include "fuzz_stream.h"
#include "log.h"
#include "nbd_export.h"
#include "registry.h"
#include "server.h"
#include "slab.h"
#include "worker.h"

#define STALL_ROUNDS 2000 /* loop passes without progress that mean "stuck" */

static struct server srv;
static struct worker wk;
static int peer = -1; /* the harness's end of the socketpair */

/* --- the server's output, checked frame by frame -------------------------- */

static struct {
	uint8_t hdr[SPILL_WIRE_HDR_SIZE];
	size_t have;
	int in_payload;
	struct frame_hdr h;
	uint8_t *payload;
	size_t cap, got;
	unsigned frames;
	Spillway__Ctrl *last_ctrl; /* the last control reply, while the script wants it */
	int keep_ctrl;
} out;

static void out_frame_done(void)
{
	struct spill_wire_hdr w;
	memcpy(&w, out.hdr, sizeof(w));
	struct iovec iov = { out.payload, out.h.payload_len };
	if (frame_verify(&w, &iov, out.h.payload_len ? 1 : 0)) {
		fprintf(stderr, "server sent op 0x%x with a bad checksum\n", out.h.op);
		abort();
	}
	if ((out.h.op & ~SPILL_OP_REPLY) == SPILL_OP_CTRL && out.h.payload_len) {
		int err;
		const char *why = NULL;
		Spillway__Ctrl *m = ctrl_unpack(out.payload, out.h.payload_len, &err, &why);
		if (!m) {
			fprintf(stderr, "server sent a control message it cannot unpack: %s\n", why);
			abort();
		}
		if (out.keep_ctrl) {
			ctrl_free(out.last_ctrl);
			out.last_ctrl = m;
		} else {
			ctrl_free(m);
		}
	}
	out.frames++;
	out.in_payload = 0;
	out.have = 0;
}

static void out_feed(const uint8_t *p, size_t n)
{
	while (n) {
		if (!out.in_payload) {
			size_t k = sizeof(out.hdr) - out.have;
			if (k > n)
				k = n;
			memcpy(out.hdr + out.have, p, k);
			out.have += k;
			p += k;
			n -= k;
			if (out.have < sizeof(out.hdr))
				continue;
			const char *why = NULL;
			if (frame_hdr_unpack((const struct spill_wire_hdr *)out.hdr, &out.h, &why)) {
				fprintf(stderr, "server sent a bad header: %s\n", why);
				abort();
			}
			/* Replies, or a control message the server starts (Reclaim). */
			CHECK((out.h.op & SPILL_OP_REPLY) || out.h.op == SPILL_OP_CTRL);
			if (out.h.payload_len > out.cap) {
				uint8_t *np = realloc(out.payload, out.h.payload_len);
				CHECK(np != NULL);
				out.payload = np;
				out.cap = out.h.payload_len;
			}
			out.got = 0;
			out.in_payload = 1;
			if (out.h.payload_len == 0)
				out_frame_done();
			continue;
		}
		size_t k = out.h.payload_len - out.got;
		if (k > n)
			k = n;
		memcpy(out.payload + out.got, p, k);
		out.got += k;
		p += k;
		n -= k;
		if (out.got == out.h.payload_len)
			out_frame_done();
	}
}

/* --- driving the loop ---------------------------------------------------- */

/* One pass of the worker's loop, then everything the server sent. Returns
 * the bytes read (progress). */
static size_t pump(void)
{
	static uint8_t buf[256 * 1024];
	event_base_loop(wk.base, EVLOOP_NONBLOCK);
	size_t total = 0;
	for (;;) {
		ssize_t n = recv(peer, buf, sizeof(buf), MSG_DONTWAIT);
		if (n <= 0)
			break;
		out_feed(buf, (size_t)n);
		total += (size_t)n;
	}
	return total;
}

/* Write len bytes in pieces of chunk (0: as the socket takes them), running
 * the loop meanwhile. Stops early if the connection is gone. */
static void send_stream(const uint8_t *p, size_t len, size_t chunk)
{
	int idle = 0;
	while (len && wk.nconns) {
		size_t want = chunk && chunk < len ? chunk : len;
		ssize_t n = send(peer, p, want, MSG_DONTWAIT | MSG_NOSIGNAL);
		size_t progress = 0;
		if (n > 0) {
			p += n;
			len -= (size_t)n;
			progress = (size_t)n;
		} else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
			break; /* the server closed its end */
		}
		progress += pump();
		idle = progress ? 0 : idle + 1;
		if (idle > STALL_ROUNDS) {
			fprintf(stderr, "server stopped reading and sends nothing (%zu bytes left)\n",
				len);
			abort();
		}
	}
}

/* Run the loop until the server answered (frames > before) or closed. */
static void wait_frames(unsigned before)
{
	int idle = 0;
	while (out.frames <= before && wk.nconns) {
		idle = pump() ? 0 : idle + 1;
		if (idle > STALL_ROUNDS) {
			fprintf(stderr, "a complete request got no answer\n");
			abort();
		}
	}
}

/* --- the scripted handshake --------------------------------------------- */

static const struct auth_psk client_key = { 16, "fuzz-client-key" };
static const struct auth_psk admin_key = { 16, "fuzz-admin-keyxx" };
static const uint8_t client_nonce[AUTH_NONCE_BYTES] = { 1, 2, 3, 4 };

/* Send one sealed control request and wait for its answer; the reply (if
 * it was a control reply) is left in out.last_ctrl. */
static void script_ctrl(Spillway__Ctrl *m, uint64_t req_id)
{
	uint8_t buf[SPILL_WIRE_HDR_SIZE + 512];
	int len = ctrl_pack(m, buf + SPILL_WIRE_HDR_SIZE, sizeof(buf) - SPILL_WIRE_HDR_SIZE);
	CHECK(len > 0);
	struct frame_hdr h = { .version = SPILL_WIRE_VERSION, .op = SPILL_OP_CTRL,
			       .req_id = req_id, .payload_len = (uint32_t)len };
	frame_hdr_pack(&h, (struct spill_wire_hdr *)buf);
	fuzz_reseal(buf, SPILL_WIRE_HDR_SIZE + (size_t)len);
	unsigned before = out.frames;
	out.keep_ctrl = 1;
	send_stream(buf, SPILL_WIRE_HDR_SIZE + (size_t)len, 0);
	wait_frames(before);
	out.keep_ctrl = 0;
}

static uint64_t extent_ids[2]; /* allocated by the script, or 0 */

/* Returns 0 if the script ran to its end. */
static int script(unsigned handshake, int do_register)
{
	Spillway__Ctrl m = SPILLWAY__CTRL__INIT;
	Spillway__Hello hello = SPILLWAY__HELLO__INIT;
	hello.version = SPILL_WIRE_VERSION;
	hello.software = "fuzz";
	hello.client_nonce.data = (uint8_t *)client_nonce;
	hello.client_nonce.len = sizeof(client_nonce);
	m.msg_case = SPILLWAY__CTRL__MSG_HELLO;
	m.hello = &hello;
	script_ctrl(&m, 1);
	Spillway__Ctrl *r = out.last_ctrl;
	CHECK(r && r->msg_case == SPILLWAY__CTRL__MSG_HELLO_REPLY);
	CHECK(!r->hello_reply->auth_required == !srv.have_psk);
	if (handshake >= 2) {
		uint8_t mac[AUTH_MAC_BYTES];
		auth_mac(handshake == 3 ? &admin_key : &client_key, AUTH_ROLE_CLIENT,
			 r->hello_reply->server_nonce.data, client_nonce, mac);
		Spillway__Auth a = SPILLWAY__AUTH__INIT;
		a.mac.data = mac;
		a.mac.len = sizeof(mac);
		m.msg_case = SPILLWAY__CTRL__MSG_AUTH;
		m.auth = &a;
		script_ctrl(&m, 2);
		CHECK(out.last_ctrl && out.last_ctrl->msg_case == SPILLWAY__CTRL__MSG_AUTH_REPLY);
	}
	if (do_register && (handshake != 1 || !srv.have_psk)) {
		Spillway__Register reg = SPILLWAY__REGISTER__INIT;
		reg.name = "fz";
		m.msg_case = SPILLWAY__CTRL__MSG_REGISTER;
		m.register_ = &reg;
		script_ctrl(&m, 3);
		CHECK(out.last_ctrl &&
		      out.last_ctrl->msg_case == SPILLWAY__CTRL__MSG_REGISTER_REPLY);
		Spillway__AllocExtent ae = SPILLWAY__ALLOC_EXTENT__INIT;
		ae.count = 2;
		ae.node = -1;
		m.msg_case = SPILLWAY__CTRL__MSG_ALLOC_EXTENT;
		m.alloc_extent = &ae;
		script_ctrl(&m, 4);
		Spillway__Ctrl *a = out.last_ctrl;
		if (a && a->msg_case == SPILLWAY__CTRL__MSG_ERROR)
			fprintf(stderr, "scripted AllocExtent refused: %s\n", a->error->message);
		CHECK(a && a->msg_case == SPILLWAY__CTRL__MSG_ALLOC_EXTENT_REPLY &&
		      a->alloc_extent_reply->n_extents == 2);
		extent_ids[0] = a->alloc_extent_reply->extents[0]->extent_id;
		extent_ids[1] = a->alloc_extent_reply->extents[1]->extent_id;
	}
	ctrl_free(out.last_ctrl);
	out.last_ctrl = NULL;
	return 0;
}

/* --- set-up and teardown ------------------------------------------------- */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	signal(SIGPIPE, SIG_IGN);
	log_set_level(LOG_ERROR); /* every closed connection logs a line */
	rcu_register_thread();
	char *args[] = { "spillwayd", NULL };
	char err[256];
	if (options_parse(1, args, &srv.opt, err, sizeof(err)))
		abort();
	srv.opt.capacity = 8u << 20;
	srv.opt.extent_size = 1u << 20;
	srv.opt.max_inflight = 16;
	srv.opt.grace_s = 0;
	snprintf(srv.opt.numa_nodes, sizeof(srv.opt.numa_nodes), "all");
	struct pool_options po = { .capacity = srv.opt.capacity, .nodes = srv.opt.numa_nodes,
				   .unit = srv.opt.extent_size };
	if (pool_set_create(&po, &srv.pools, err, sizeof(err))) {
		fprintf(stderr, "pool: %s\n", err);
		abort();
	}
	snprintf(srv.server_id, sizeof(srv.server_id), "fuzz:1");
	if (admission_init(&srv.opt)) /* connection and output caps, at their defaults */
		abort();
	srv.reg = registry_create(srv.pools, srv.opt.extent_size, srv.opt.grace_s * 1000);
	srv.conn_cache = slab_cache_create("conn", sizeof(struct conn), 64);
	if (!srv.reg || !srv.conn_cache)
		abort();
	return 0;
}

/* Extent ids 1 and 2 of the stream's whole frames become the script's. */
static void patch_extent_ids(uint8_t *buf, size_t len)
{
	size_t off = 0;
	while (off + SPILL_WIRE_HDR_SIZE <= len) {
		struct spill_wire_hdr w;
		memcpy(&w, buf + off, sizeof(w));
		uint64_t id = le64toh(w.extent_id);
		if (id == 1 || id == 2) {
			w.extent_id = htole64(extent_ids[id - 1]);
			memcpy(buf + off, &w, sizeof(w));
		}
		off += fuzz_frame_len(buf + off, len - off);
	}
}

static void server_up(int keys, int arbiter)
{
	srv.have_psk = keys;
	srv.have_admin_psk = keys;
	srv.psk = client_key;
	srv.admin_psk = admin_key;
	srv.start_ms = registry_now_ms();
	/* What an earlier input changed in the long-lived registry. */
	CHECK(registry_load_quotas(srv.reg, NULL, NULL, 0) == 0);
	registry_set_cluster_state(srv.reg, 0, 0);
	CHECK(cluster_init(&srv) == 0);
	srv.opt.arbiter = arbiter;
	if (arbiter) {
		struct arbiter_config cfg = { srv.opt.high_pct, srv.opt.low_pct,
					      srv.opt.reclaim_deadline_ms,
					      srv.opt.report_interval_ms };
		srv.arbiter = arbiter_create(&cfg);
		CHECK(srv.arbiter != NULL);
	}
	nbd_exports_init(&srv);
	memset(&wk, 0, sizeof(wk));
	wk.srv = &srv;
	wk.node = -1;
	wk.base = event_base_new();
	CHECK(wk.base != NULL);
	srv.workers = &wk;
	srv.nworkers = 1;
}

static void server_down(void)
{
	CHECK(wk.nconns == 0 && wk.conns == NULL);
	/* Deliveries still queued on the loop (a Reclaim to nobody). */
	event_base_loop(wk.base, EVLOOP_NONBLOCK);
	nbd_exports_destroy();
	cluster_destroy(&srv);
	arbiter_destroy(srv.arbiter);
	srv.arbiter = NULL;
	/* Every identity is disconnected now, with a grace period of 0. */
	registry_expire(srv.reg, registry_now_ms() + 1000);
	uint64_t used, reserved;
	unsigned nclients;
	registry_totals(srv.reg, &used, &reserved, &nclients);
	if (nclients || used) {
		fprintf(stderr, "%u identities (%llu bytes) outlived their connections\n",
			nclients, (unsigned long long)used);
		abort();
	}
	event_base_free(wk.base);
	wk.base = NULL;
	srv.workers = NULL;
	srv.nworkers = 0;
	for (int i = 0; i < srv.pools->npools; i++)
		if (atomic_load(&srv.pools->pools[i].used)) {
			fprintf(stderr, "pool %d: %llu bytes never came back\n", i,
				(unsigned long long)atomic_load(&srv.pools->pools[i].used));
			abort();
		}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	uint8_t mode = data[0];
	unsigned handshake = mode & 3;
	int keys = (mode & 4) || handshake >= 2;
	int do_register = (mode & 8) != 0;
	int reseal = (mode & 16) != 0;
	static const size_t pieces[4] = { 0, 1, 16, 256 };
	size_t chunk = pieces[(mode >> 5) & 3];

	server_up(keys, (mode & 128) != 0);
	int sv[2];
	/* Non-blocking, as libevent's listener hands accepted sockets over. */
	CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) == 0);
	peer = sv[1];
	/* Small socket buffers, so replies back up: on_write, pinned pages and
	 * paused reading get their turn. */
	int small = 16 * 1024;
	setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
	setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	struct conn_origin o = { .node = -1 };
	CHECK(stream_socket_wrap(sv[0], 0, &o.stream) == 0);
	snprintf(o.peer, sizeof(o.peer), "fuzz");
	conn_start(&wk, &o);
	CHECK(wk.nconns == 1);

	if (handshake)
		script(handshake, do_register);

	size_t len = size - 1;
	uint8_t *stream = malloc(len ? len : 1);
	CHECK(stream != NULL);
	memcpy(stream, data + 1, len);
	if (reseal && extent_ids[0])
		patch_extent_ids(stream, len);
	if (reseal)
		fuzz_reseal(stream, len);
	send_stream(stream, len, chunk);
	free(stream);

	/* End of input: the connection must go, whatever state it is in. */
	if ((mode & 4) && handshake >= 2 && wk.conns)
		conn_drain(wk.conns); /* may free it */
	shutdown(peer, SHUT_WR);
	int idle = 0;
	while (wk.nconns) {
		idle = pump() ? 0 : idle + 1;
		if (idle > STALL_ROUNDS) {
			fprintf(stderr, "connection still open after its peer closed\n");
			abort();
		}
	}
	pump();
	close(peer);
	peer = -1;
	extent_ids[0] = extent_ids[1] = 0;
	free(out.payload);
	ctrl_free(out.last_ctrl);
	memset(&out, 0, sizeof(out));
	server_down();
	return 0;
}
