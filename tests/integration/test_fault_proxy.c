/* SPDX-License-Identifier: MIT */
/*
 * The fault-injection harness does what it says, against a real spillwayd:
 * the proxy passes every byte through untouched and counts frames; a cut, a
 * stall, a partition, a delay, a corrupted byte and a forged status each
 * reach the client as the failure they model (never as a success), at the
 * frame asked for, and
 * the proxy reports each as an event; a frozen server (SIGSTOP) times out and
 * serves again after SIGCONT. Every wait is on an event, bounded only to fail
 * instead of hanging; client timeouts are short so that failures come fast.
 */
#include <errno.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "fault_proxy.h"
#include "harness.h"
#include "proc_freeze.h"

#define BOUND_MS 20000   /* only there to fail instead of hanging */
/* The client's timeout where a failure is expected: short, yet long enough
 * for the handshake and the calls before the fault, also in a sanitizer
 * build on a loaded machine. */
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
#define SHORT_MS 5000
#else
#define SHORT_MS 2000
#endif
#define BATCH 8          /* pages per write: 32 KiB, received in place */

static struct srv server;
static struct fault_proxy *proxy;

static int setup(void **state)
{
	(void)state;
	memset(&server, 0, sizeof(server));
	if (srv_start(&server, "--capacity", "64M", NULL))
		return -1;
	return fault_proxy_start(&proxy, server.port) ? -1 : 0;
}

static int teardown(void **state)
{
	(void)state;
	fault_proxy_stop(proxy);
	proxy = NULL;
	if (server.pid > 0 && srv_stop(&server) != 0)
		return -1;
	return 0;
}

/* Connect to url as name (resuming with token if set); NULL on failure,
 * with the error in *rc. */
static struct client *open_client(const char *url, const char *name, const uint8_t *token,
				  int timeout_ms, int *rc)
{
	struct client_opts o = { .name = name, .token = token, .timeout_ms = timeout_ms };
	struct client *c = NULL;
	*rc = client_connect(url, &o, &c, NULL, 0);
	return *rc ? NULL : c;
}

static struct client *must_open(const char *url, const char *name, const uint8_t *token,
				int timeout_ms)
{
	int rc;
	struct client *c = open_client(url, name, token, timeout_ms, &rc);
	if (!c)
		fail_msg("connect %s as %s: %d", url, name, rc);
	return c;
}

static uint64_t seed_of(uint32_t page, int gen)
{
	return ((uint64_t)gen << 32) | page;
}

static int write_pages(struct client *c, uint64_t extent, uint32_t page, uint16_t n, int gen)
{
	uint8_t *buf = malloc((size_t)n * SPILL_PAGE_SIZE);
	assert_non_null(buf);
	for (uint16_t i = 0; i < n; i++)
		fill_page(buf + (size_t)i * SPILL_PAGE_SIZE, seed_of(page + i, gen));
	int rc = client_write(c, extent, page, n, buf);
	free(buf);
	return rc;
}

/* Every page of [page, page+n) reads back as generation gen. */
static void expect_pages(struct client *c, uint64_t extent, uint32_t page, uint16_t n, int gen)
{
	uint8_t *buf = malloc((size_t)n * SPILL_PAGE_SIZE);
	assert_non_null(buf);
	assert_int_equal(client_read(c, extent, page, n, buf, NULL), 0);
	for (uint16_t i = 0; i < n; i++)
		if (!check_page(buf + (size_t)i * SPILL_PAGE_SIZE, seed_of(page + i, gen)))
			fail_msg("page %u is not generation %d", page + i, gen);
	free(buf);
}

/* Every page of [page, page+n) is absent: never the bytes of a failed write. */
static void expect_absent(struct client *c, uint64_t extent, uint32_t page, uint16_t n)
{
	uint8_t *buf = malloc((size_t)n * SPILL_PAGE_SIZE);
	uint8_t present[SPILL_PRESENT_MAP_BYTES];
	assert_non_null(buf);
	assert_int_equal(client_read(c, extent, page, n, buf, present), -ENODATA);
	for (uint16_t i = 0; i < n; i++)
		if ((present[i / 8] >> (i % 8)) & 1)
			fail_msg("page %u is present after a failed write", page + i);
	free(buf);
}

/* Neither data nor end-of-file nor an error is waiting on fd. */
static void expect_socket_quiet(int fd)
{
	char b;
	struct pollfd pf = { .fd = fd, .events = POLLIN };
	assert_int_equal(poll(&pf, 1, 0), 0);
	assert_int_equal(recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT), -1);
	assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
}

/* Wait until a server metric reaches want (bounded by BOUND_MS). */
static void wait_metric(const char *series, long long want)
{
	long long v;
	for (int waited = 0; (v = srv_metric(&server, series)) < want && waited < BOUND_MS;
	     waited += 10) {
		struct pollfd none = { -1, 0, 0 };
		poll(&none, 0, 10); /* pacing of the bounded wait, not synchronisation */
	}
	if (v < want)
		fail_msg("%s is %lld, expected at least %lld", series, v, want);
}

/* (a) Batches of 1 to 512 pages (frames far larger than the proxy's buffer)
 * arrive intact, and the proxy counted every request and reply frame. */
static void pass_through_forwards_every_byte_and_counts_frames(void **state)
{
	(void)state;
	struct client *c = must_open(fault_proxy_url(proxy), "fault-pass", NULL, BOUND_MS);
	static const uint16_t sizes[] = { 1, 3, 16, 64, 512, 2, 512, 7 };
	enum { N = sizeof(sizes) / sizeof(sizes[0]) };
	struct client_extent e[N];
	assert_int_equal(client_alloc_extents(c, N, -1, e), 0);
	long writes = 0;
	for (int gen = 1; gen <= 2; gen++) {
		for (int i = 0; i < N; i++) {
			assert_true(e[i].npages >= sizes[i]);
			/* Batch i ends at its extent's last page. */
			uint32_t at = e[i].npages - sizes[i];
			assert_int_equal(write_pages(c, e[i].id, at, sizes[i], gen), 0);
			writes++;
		}
	}
	for (int i = 0; i < N; i++)
		expect_pages(c, e[i].id, e[i].npages - sizes[i], sizes[i], 2);
	long reads = N;
	assert_int_equal(fault_frames(proxy, 0, FAULT_C2S, SPILL_OP_WRITE), writes);
	assert_int_equal(fault_frames(proxy, 0, FAULT_S2C, SPILL_OP_WRITE), writes);
	assert_int_equal(fault_frames(proxy, 0, FAULT_C2S, SPILL_OP_READ), reads);
	assert_int_equal(fault_frames(proxy, 0, FAULT_S2C, SPILL_OP_READ), reads);
	assert_true(fault_frames(proxy, 0, FAULT_C2S, SPILL_OP_CTRL) >= 3); /* Hello, Register, Alloc */
	assert_int_equal(fault_count(proxy, FAULT_EV_CUT, FAULT_ALL), 0);
	assert_int_equal(fault_count(proxy, FAULT_EV_CORRUPT, FAULT_ALL), 0);
	assert_int_equal(fault_conns(proxy), 1);
	client_close(c);
	assert_int_equal(fault_wait(proxy, FAULT_EV_CLOSED, 0, BOUND_MS), 0);
}

/* (b) Cut at the 3rd WRITE after its header and half its payload: that write
 * fails, the two before it read back, its pages stay absent. */
static void cut_at_third_write(enum fault_close how)
{
	const char *name = how == FAULT_RST ? "fault-cut-rst" : "fault-cut-fin";
	struct client *c = must_open(fault_proxy_url(proxy), name, NULL, BOUND_MS);
	struct client_extent e;
	assert_int_equal(client_alloc_extents(c, 1, -1, &e), 0);
	uint8_t token[CTRL_TOKEN_BYTES];
	memcpy(token, client_token(c), sizeof(token));
	assert_int_equal(fault_cut(proxy, 0, FAULT_C2S, SPILL_OP_WRITE, 3, FAULT_KEEP_HALF, how),
			 0);

	assert_int_equal(write_pages(c, e.id, 0, BATCH, 1), 0);
	assert_int_equal(write_pages(c, e.id, BATCH, BATCH, 1), 0);
	assert_true(write_pages(c, e.id, 2 * BATCH, BATCH, 1) < 0);
	assert_int_equal(fault_wait(proxy, FAULT_EV_CUT, 0, BOUND_MS), 0);
	assert_int_equal(fault_count(proxy, FAULT_EV_CUT, 0), 1);
	/* Two WRITE replies came back; the third request never got one. */
	assert_int_equal(fault_frames(proxy, 0, FAULT_C2S, SPILL_OP_WRITE), 3);
	assert_int_equal(fault_frames(proxy, 0, FAULT_S2C, SPILL_OP_WRITE), 2);
	assert_true(client_dead(c) < 0);
	client_close(c);

	struct client *r = must_open(server.url, name, token, BOUND_MS);
	expect_pages(r, e.id, 0, 2 * BATCH, 1);
	expect_absent(r, e.id, 2 * BATCH, BATCH);
	client_close(r);
}

static void cut_with_rst_fails_that_write_only(void **state)
{
	(void)state;
	cut_at_third_write(FAULT_RST);
	/* Abortive close: the proxy closed both sockets at once. */
	assert_int_equal(fault_wait(proxy, FAULT_EV_CLOSED, 0, BOUND_MS), 0);
}

static void cut_with_fin_fails_that_write_only(void **state)
{
	(void)state;
	cut_at_third_write(FAULT_FIN);
	/* Orderly close: done once both peers closed their ends too. */
	assert_int_equal(fault_wait(proxy, FAULT_EV_CLOSED, 0, BOUND_MS), 0);
}

/* A cut for FAULT_ALL reaches every connection accepted later, once each:
 * a client that reconnects is cut again at its first WRITE, until cleared. */
static void cut_for_all_connections_cuts_each_reconnect(void **state)
{
	(void)state;
	struct client *c = must_open(fault_proxy_url(proxy), "fault-cut-all", NULL, BOUND_MS);
	struct client_extent e;
	assert_int_equal(client_alloc_extents(c, 1, -1, &e), 0);
	uint8_t token[CTRL_TOKEN_BYTES];
	memcpy(token, client_token(c), sizeof(token));
	assert_int_equal(fault_cut(proxy, FAULT_ALL, FAULT_C2S, SPILL_OP_WRITE, 1, 0, FAULT_RST), 0);
	for (int i = 0; i < 3; i++) {
		if (i)
			c = must_open(fault_proxy_url(proxy), "fault-cut-all", token, BOUND_MS);
		assert_true(write_pages(c, e.id, 0, 1, 1) < 0);
		assert_int_equal(fault_wait(proxy, FAULT_EV_CUT, i, BOUND_MS), 0);
		client_close(c);
	}
	assert_int_equal(fault_count(proxy, FAULT_EV_CUT, FAULT_ALL), 3);
	/* Nothing of a frame cut before its first byte reached the server. */
	assert_int_equal(fault_frames(proxy, FAULT_ALL, FAULT_S2C, SPILL_OP_WRITE), 0);
	assert_int_equal(fault_clear(proxy, FAULT_ALL), 0);
	c = must_open(fault_proxy_url(proxy), "fault-cut-all", token, BOUND_MS);
	expect_absent(c, e.id, 0, 1);
	assert_int_equal(write_pages(c, e.id, 0, 1, 1), 0);
	expect_pages(c, e.id, 0, 1, 1);
	client_close(c);
}

/* (c) A stall past the client's timeout fails the call within it, holds the
 * bytes (the server sees the write only after the resume), also stalls a
 * connection opened meanwhile, and after the resume a new connection works. */
static void stall_times_out_then_resume_delivers_held_bytes(void **state)
{
	(void)state;
	struct client *c = must_open(fault_proxy_url(proxy), "fault-stall", NULL, SHORT_MS);
	struct client_extent e;
	assert_int_equal(client_alloc_extents(c, 1, -1, &e), 0);
	uint8_t token[CTRL_TOKEN_BYTES];
	memcpy(token, client_token(c), sizeof(token));
	assert_int_equal(write_pages(c, e.id, 0, 1, 1), 0);

	assert_int_equal(fault_stall(proxy, FAULT_ALL, FAULT_BOTH), 0);
	assert_int_equal(write_pages(c, e.id, 1, 1, 1), -ETIMEDOUT);
	/* Held, not read: the proxy has not even seen the header. */
	assert_int_equal(fault_frames(proxy, 0, FAULT_C2S, SPILL_OP_WRITE), 1);
	int rc;
	assert_null(open_client(fault_proxy_url(proxy), "fault-stall-2", NULL, SHORT_MS, &rc));
	assert_int_equal(rc, -ETIMEDOUT);

	assert_int_equal(fault_resume(proxy, FAULT_ALL, FAULT_BOTH), 0);
	/* The held write reaches the server and its reply comes back. */
	assert_int_equal(fault_wait_frames(proxy, 0, FAULT_S2C, SPILL_OP_WRITE, 2, BOUND_MS), 0);
	client_close(c);
	struct client *r = must_open(fault_proxy_url(proxy), "fault-stall", token, BOUND_MS);
	expect_pages(r, e.id, 0, 2, 1);
	client_close(r);
}

/* Replies stalled, requests not: the write reaches the server and is
 * applied, yet the client times out and cannot tell (the case a write
 * fence must handle). */
static void stall_of_replies_only_lets_the_write_land(void **state)
{
	(void)state;
	struct client *c = must_open(fault_proxy_url(proxy), "fault-half", NULL, SHORT_MS);
	struct client_extent e;
	assert_int_equal(client_alloc_extents(c, 1, -1, &e), 0);
	uint8_t token[CTRL_TOKEN_BYTES];
	memcpy(token, client_token(c), sizeof(token));
	assert_int_equal(fault_stall(proxy, 0, FAULT_S2C), 0);
	assert_int_equal(write_pages(c, e.id, 0, BATCH, 1), -ETIMEDOUT);
	assert_int_equal(fault_frames(proxy, 0, FAULT_C2S, SPILL_OP_WRITE), 1);
	assert_int_equal(fault_frames(proxy, 0, FAULT_S2C, SPILL_OP_WRITE), 0);
	/* The server applied it (it counts the bytes once the pages are in). */
	wait_metric("spillway_bytes_total{op=\"write\"}", BATCH * SPILL_PAGE_SIZE);
	client_close(c);
	struct client *r = must_open(fault_proxy_url(proxy), "fault-half", token, BOUND_MS);
	expect_pages(r, e.id, 0, BATCH, 1);
	client_close(r);
}

/* (d) A partition drops everything silently: the client's request times out,
 * its socket sees no byte, no FIN and no RST, not even when the server side
 * goes away; another connection is not affected. */
static void partition_times_out_and_sends_no_fin(void **state)
{
	(void)state;
	struct client *c = must_open(fault_proxy_url(proxy), "fault-part", NULL, SHORT_MS);
	struct client *other = must_open(fault_proxy_url(proxy), "fault-other", NULL, BOUND_MS);
	struct client_extent e, eo;
	assert_int_equal(client_alloc_extents(c, 1, -1, &e), 0);
	assert_int_equal(client_alloc_extents(other, 1, -1, &eo), 0);
	assert_int_equal(write_pages(c, e.id, 0, 1, 1), 0);

	assert_int_equal(fault_partition(proxy, 0), 0);
	assert_int_equal(write_pages(c, e.id, 1, 1, 1), -ETIMEDOUT);
	assert_int_equal(fault_wait(proxy, FAULT_EV_DROP, 0, BOUND_MS), 0);
	assert_int_equal(write_pages(other, eo.id, 0, 1, 1), 0);
	expect_pages(other, eo.id, 0, 1, 1);
	int fd = client_fd(c);
	expect_socket_quiet(fd);

	/* The server dies: the proxy sees its end close, the client still
	 * hears nothing. */
	assert_int_equal(fault_count(proxy, FAULT_EV_EOF, 0), 0);
	srv_kill(&server);
	assert_int_equal(fault_wait(proxy, FAULT_EV_EOF, 0, BOUND_MS), 0);
	expect_socket_quiet(fd);
	assert_int_equal(fault_count(proxy, FAULT_EV_CLOSED, 0), 0);
	/* The connection outside the partition is told. */
	assert_int_equal(fault_wait(proxy, FAULT_EV_CLOSED, 1, BOUND_MS), 0);
	client_close(other);
	client_close(c);
}

/* Healed with FAULT_HEAL_RESUME a connection carries requests again; with
 * FAULT_HEAL_DEAD it stays a black hole while new connections work. */
static void healed_partition_resumes_or_stays_dead(void **state)
{
	(void)state;
	struct client *c0 = must_open(fault_proxy_url(proxy), "fault-heal-0", NULL, SHORT_MS);
	struct client *c1 = must_open(fault_proxy_url(proxy), "fault-heal-1", NULL, SHORT_MS);
	assert_int_equal(fault_partition(proxy, FAULT_ALL), 0);
	assert_int_equal(fault_heal(proxy, 0, FAULT_HEAL_RESUME), 0);
	assert_int_equal(client_ping(c0), 0);
	assert_int_equal(fault_heal(proxy, FAULT_ALL, FAULT_HEAL_DEAD), 0);
	assert_int_equal(client_ping(c1), -ETIMEDOUT);
	assert_int_equal(fault_wait(proxy, FAULT_EV_DROP, 1, BOUND_MS), 0);
	assert_int_equal(client_ping(c0), 0);
	struct client *c2 = must_open(fault_proxy_url(proxy), "fault-heal-2", NULL, SHORT_MS);
	assert_int_equal(client_ping(c2), 0);
	expect_socket_quiet(client_fd(c1));
	client_close(c2);
	client_close(c1);
	client_close(c0);
}

/* (e) A flipped payload byte: the server refuses the frame on its CRC, the
 * client gets an error, and the old contents stay (one page, copied) or the
 * pages read back absent (a batch received in place), never the new bytes. */
static void corrupt_payload_is_refused_never_acknowledged(void **state)
{
	(void)state;
	assert_int_equal(srv_metric(&server, "spillway_errors_total{kind=\"crc\"}"), 0);
	struct client *c = must_open(fault_proxy_url(proxy), "fault-crc", NULL, BOUND_MS);
	struct client_extent e;
	assert_int_equal(client_alloc_extents(c, 1, -1, &e), 0);
	uint8_t token[CTRL_TOKEN_BYTES];
	memcpy(token, client_token(c), sizeof(token));
	assert_int_equal(fault_corrupt(proxy, 0, FAULT_C2S, SPILL_OP_WRITE, 2, SPILL_WIRE_HDR_SIZE + 100), 0);
	assert_int_equal(write_pages(c, e.id, 0, 1, 1), 0);
	assert_true(write_pages(c, e.id, 0, 1, 2) < 0);
	assert_int_equal(fault_wait(proxy, FAULT_EV_CORRUPT, 0, BOUND_MS), 0);
	client_close(c);

	/* The next connection's first WRITE, a batch, loses a byte deep in. */
	assert_int_equal(fault_corrupt(proxy, 1, FAULT_C2S, SPILL_OP_WRITE, 1,
				       SPILL_WIRE_HDR_SIZE + 5 * SPILL_PAGE_SIZE + 17), 0);
	c = must_open(fault_proxy_url(proxy), "fault-crc", token, BOUND_MS);
	assert_true(write_pages(c, e.id, BATCH, BATCH, 1) < 0);
	assert_int_equal(fault_wait(proxy, FAULT_EV_CORRUPT, 1, BOUND_MS), 0);
	client_close(c);

	assert_int_equal(srv_metric(&server, "spillway_errors_total{kind=\"crc\"}"), 2);
	struct client *r = must_open(server.url, "fault-crc", token, BOUND_MS);
	expect_pages(r, e.id, 0, 1, 1);
	expect_absent(r, e.id, BATCH, BATCH);
	client_close(r);
}

/* A flipped byte in a READ reply: the client refuses it (-EBADMSG) and
 * never hands the bytes over as data. */
static void corrupt_reply_fails_the_read(void **state)
{
	(void)state;
	struct client *c = must_open(fault_proxy_url(proxy), "fault-reply", NULL, BOUND_MS);
	struct client_extent e;
	assert_int_equal(client_alloc_extents(c, 1, -1, &e), 0);
	assert_int_equal(write_pages(c, e.id, 0, BATCH, 1), 0);
	assert_int_equal(fault_corrupt(proxy, 0, FAULT_S2C, SPILL_OP_READ, 1, SPILL_WIRE_HDR_SIZE + 3 * SPILL_PAGE_SIZE),
			 0);
	uint8_t *buf = malloc((size_t)BATCH * SPILL_PAGE_SIZE);
	assert_non_null(buf);
	assert_int_equal(client_read(c, e.id, 0, BATCH, buf, NULL), -EBADMSG);
	assert_int_equal(fault_count(proxy, FAULT_EV_CORRUPT, 0), 1);
	free(buf);
	client_close(c);
}

/* A forged status reaches the client with a checksum it accepts, so it acts
 * on the status: an error without its payload (and the stream stays in step:
 * the next reply on the connection is read right), then ABSENT on a reply
 * that carries the pages. nth 0 forges once: the read after reads data. */
static void forged_status_is_acted_on_once(void **state)
{
	(void)state;
	struct client *c = must_open(fault_proxy_url(proxy), "fault-forge", NULL, BOUND_MS);
	struct client_extent e;
	assert_int_equal(client_alloc_extents(c, 1, -1, &e), 0);
	assert_int_equal(write_pages(c, e.id, 0, BATCH, 1), 0);
	uint8_t *buf = malloc((size_t)BATCH * SPILL_PAGE_SIZE);
	assert_non_null(buf);

	assert_int_equal(fault_forge(proxy, FAULT_ALL, SPILL_OP_READ, 0, SPILL_ST_EINTERNAL, 0), 0);
	assert_int_equal(client_read(c, e.id, 0, BATCH, buf, NULL), -EIO);
	expect_pages(c, e.id, 0, BATCH, 1);

	assert_int_equal(fault_forge(proxy, 0, SPILL_OP_READ, 0, SPILL_ST_ABSENT, 1), 0);
	assert_int_equal(client_read(c, e.id, 0, BATCH, buf, NULL), -ENODATA);
	expect_pages(c, e.id, 0, BATCH, 1);
	assert_int_equal(fault_count(proxy, FAULT_EV_FORGE, FAULT_ALL), 2);
	assert_int_equal(fault_forge(proxy, 0, SPILL_OP_READ, 0, SPILL_ST_MAX, 0), -EINVAL);
	free(buf);
	client_close(c);
}

/* Every frame held a little in both directions: nothing is lost, reordered
 * or changed, so what was written reads back. */
static void delayed_frames_arrive_intact_and_in_order(void **state)
{
	(void)state;
	assert_int_equal(fault_delay(proxy, FAULT_ALL, FAULT_BOTH, 2000), 0);
	struct client *c = must_open(fault_proxy_url(proxy), "fault-slow", NULL, BOUND_MS);
	struct client_extent e;
	assert_int_equal(client_alloc_extents(c, 1, -1, &e), 0);
	for (int gen = 1; gen <= 3; gen++)
		for (uint32_t p = 0; p < 4 * BATCH; p += BATCH)
			assert_int_equal(write_pages(c, e.id, p, BATCH, gen), 0);
	expect_pages(c, e.id, 0, 4 * BATCH, 3);
	assert_int_equal(fault_frames(proxy, 0, FAULT_S2C, SPILL_OP_WRITE), 12);
	client_close(c);
}

/* Each reply held longer than the client waits: the call times out; without
 * the delay the same call succeeds on a new connection. */
static void delayed_replies_time_out_the_client(void **state)
{
	(void)state;
	struct client *c = must_open(fault_proxy_url(proxy), "fault-delay", NULL, SHORT_MS);
	assert_int_equal(client_ping(c), 0);
	assert_int_equal(fault_delay(proxy, 0, FAULT_S2C, 20u * 1000u * 1000u), 0);
	assert_int_equal(client_ping(c), -ETIMEDOUT);
	/* The reply did arrive at the proxy: it is the one being held. */
	assert_int_equal(fault_frames(proxy, 0, FAULT_S2C, SPILL_OP_PING), 2);
	client_close(c);
	assert_int_equal(fault_delay(proxy, 0, FAULT_S2C, 0), 0);
	c = must_open(fault_proxy_url(proxy), "fault-delay-2", NULL, SHORT_MS);
	assert_int_equal(client_ping(c), 0);
	client_close(c);
}

/* (f) A frozen server: a request times out; after SIGCONT a new request on a
 * new connection succeeds and the data written before is there. */
static void frozen_server_times_out_then_thaws(void **state)
{
	(void)state;
	struct client *c = must_open(server.url, "fault-frozen", NULL, SHORT_MS);
	struct client_extent e;
	assert_int_equal(client_alloc_extents(c, 1, -1, &e), 0);
	uint8_t token[CTRL_TOKEN_BYTES];
	memcpy(token, client_token(c), sizeof(token));
	assert_int_equal(write_pages(c, e.id, 0, 1, 1), 0);

	assert_int_equal(proc_freeze(server.pid, BOUND_MS), 0);
	assert_int_equal(proc_freeze_state(server.pid), 'T');
	assert_int_equal(client_ping(c), -ETIMEDOUT);
	client_close(c);

	assert_int_equal(proc_thaw(server.pid, BOUND_MS), 0);
	assert_int_not_equal(proc_freeze_state(server.pid), 'T');
	c = must_open(server.url, "fault-frozen", token, SHORT_MS);
	assert_int_equal(client_ping(c), 0);
	expect_pages(c, e.id, 0, 1, 1);
	client_close(c);
}

/* spill-fault, the proxy as a program: commands on stdin, one answer line
 * each on stdout; a cut set there fails the client's write and is counted. */
static int cli_open(pid_t *pid, FILE **in, FILE **out)
{
	int to[2], from[2];
	if (pipe(to) || pipe(from))
		return -1;
	char port[16];
	snprintf(port, sizeof(port), "%d", server.port);
	*pid = fork();
	if (*pid == 0) {
		dup2(to[0], 0);
		dup2(from[1], 1);
		close(to[1]);
		close(from[0]);
		execl(SPILL_FAULT_PATH, SPILL_FAULT_PATH, "--upstream", port, (char *)NULL);
		_exit(127);
	}
	close(to[0]);
	close(from[1]);
	*in = fdopen(to[1], "w");
	*out = fdopen(from[0], "r");
	setvbuf(*in, NULL, _IOLBF, 0);
	return *pid > 0 && *in && *out ? 0 : -1;
}

/* Send one command, return its answer line (static buffer). */
static const char *cli(FILE *in, FILE *out, const char *cmd)
{
	static char line[256];
	fprintf(in, "%s\n", cmd);
	fflush(in);
	if (!fgets(line, sizeof(line), out))
		return "(eof)";
	line[strcspn(line, "\n")] = '\0';
	return line;
}

static void command_line_proxy_cuts_and_counts(void **state)
{
	(void)state;
	pid_t pid = -1;
	FILE *in = NULL, *out = NULL;
	assert_int_equal(cli_open(&pid, &in, &out), 0);
	char line[64], url[64];
	int port = 0;
	assert_non_null(fgets(line, sizeof(line), out));
	assert_int_equal(sscanf(line, "port=%d", &port), 1);
	snprintf(url, sizeof(url), "tcp://127.0.0.1:%d", port);

	assert_string_equal(cli(in, out, "cut all c2s write 2 half rst"), "ok");
	assert_string_equal(cli(in, out, "cut all sideways write 2 half rst"),
			    "error: unknown command or bad arguments (see spill-fault --help)");
	assert_string_equal(cli(in, out, "stall 7 both"), "error: No such file or directory");
	struct client *c = must_open(url, "fault-cli", NULL, BOUND_MS);
	struct client_extent e;
	assert_int_equal(client_alloc_extents(c, 1, -1, &e), 0);
	assert_int_equal(write_pages(c, e.id, 0, BATCH, 1), 0);
	assert_true(write_pages(c, e.id, BATCH, BATCH, 1) < 0);
	assert_string_equal(cli(in, out, "wait cut 0 1 20000"), "ok");
	assert_string_equal(cli(in, out, "count cut all"), "1");
	assert_string_equal(cli(in, out, "frames 0 c2s write"), "2");
	assert_string_equal(cli(in, out, "frames 0 s2c write"), "1");
	assert_string_equal(cli(in, out, "conns"), "1");
	assert_string_equal(cli(in, out, "forge all read 0 Absent keep"), "ok");
	assert_string_equal(cli(in, out, "forge all read 0 EBOGUS drop"),
			    "error: unknown command or bad arguments (see spill-fault --help)");
	assert_string_equal(cli(in, out, "clear all"), "ok");
	client_close(c);
	fprintf(in, "quit\n");
	fclose(in);
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	fclose(out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(pass_through_forwards_every_byte_and_counts_frames,
						setup, teardown),
		cmocka_unit_test_setup_teardown(cut_with_rst_fails_that_write_only, setup, teardown),
		cmocka_unit_test_setup_teardown(cut_with_fin_fails_that_write_only, setup, teardown),
		cmocka_unit_test_setup_teardown(cut_for_all_connections_cuts_each_reconnect,
						setup, teardown),
		cmocka_unit_test_setup_teardown(stall_times_out_then_resume_delivers_held_bytes,
						setup, teardown),
		cmocka_unit_test_setup_teardown(stall_of_replies_only_lets_the_write_land, setup,
						teardown),
		cmocka_unit_test_setup_teardown(partition_times_out_and_sends_no_fin, setup, teardown),
		cmocka_unit_test_setup_teardown(healed_partition_resumes_or_stays_dead, setup,
						teardown),
		cmocka_unit_test_setup_teardown(corrupt_payload_is_refused_never_acknowledged,
						setup, teardown),
		cmocka_unit_test_setup_teardown(corrupt_reply_fails_the_read, setup, teardown),
		cmocka_unit_test_setup_teardown(forged_status_is_acted_on_once, setup, teardown),
		cmocka_unit_test_setup_teardown(delayed_frames_arrive_intact_and_in_order, setup,
						teardown),
		cmocka_unit_test_setup_teardown(delayed_replies_time_out_the_client, setup, teardown),
		cmocka_unit_test_setup_teardown(frozen_server_times_out_then_thaws, setup, teardown),
		cmocka_unit_test_setup_teardown(command_line_proxy_cuts_and_counts, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
