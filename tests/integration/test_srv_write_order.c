/* SPDX-License-Identifier: MIT */
/*
 * Write ordering and fencing on a real spillwayd (proto/wire.h, version 2):
 * a page takes a WRITE or INVALIDATE only if the frame's write version is not
 * older than the page's, whichever connection each came on, and no payload
 * reaches an extent before its frame is whole and checked.
 *
 * The writes that lose are sent by hand on a registered connection (the
 * library's socket, taken over), so the test controls exactly when each
 * byte reaches the server; the winners go through the client library. The
 * late write of a timed-out connection goes through the fault proxy, held
 * by a stall until the newer write was acknowledged.
 *
 * Each case checks bytes and checksums: a page reads back as the newest
 * acknowledged write, with status OK (the client library verifies every
 * READ reply's CRC).
 */
#include <poll.h>
#include <sys/socket.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "fault_proxy.h"
#include "frame.h"
#include "harness.h"
#include "srv_raw.h"

#define BOUND_MS 20000   /* only there to fail instead of hanging */
#define N 8              /* pages per write: a multi-page frame */
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
#define SHORT_MS 5000
#else
#define SHORT_MS 2000
#endif

static struct srv server;

static int setup(void **state)
{
	(void)state;
	memset(&server, 0, sizeof(server));
	return srv_start(&server, "--capacity", "64M", NULL);
}

static int teardown(void **state)
{
	(void)state;
	return srv_stop(&server) == 0 ? 0 : -1;
}

static struct client *open_as(const char *url, const char *name, const uint8_t *token,
			      _Atomic uint64_t *clock, int timeout_ms)
{
	struct client_opts o = { .name = name, .token = token, .timeout_ms = timeout_ms,
				 .write_clock = clock };
	struct client *c = NULL;
	int rc = client_connect(url, &o, &c, NULL, 0);
	if (rc)
		fail_msg("connect %s as %s: %d", url, name, rc);
	return c;
}

static void fill(uint8_t *buf, uint64_t gen)
{
	raw_fill_gen(buf, N, gen);
}

/* Every page of [0, N) reads back, checksum verified, as generation gen. */
static void expect_gen(struct client *c, uint64_t extent, uint64_t gen)
{
	uint8_t *buf = malloc((size_t)N * SPILL_PAGE_SIZE);
	assert_int_equal(client_read(c, extent, 0, N, buf, NULL), 0);
	if (!raw_is_gen(buf, N, gen))
		fail_msg("the pages are not generation %llu", (unsigned long long)gen);
	free(buf);
}

/* A sealed WRITE (npages N from page 0) or INVALIDATE with version wver. */
static size_t make_write(uint8_t *out, uint16_t op, uint64_t extent, uint64_t wver,
			 const uint8_t *pages)
{
	uint32_t len = op == SPILL_OP_WRITE ? N * SPILL_PAGE_SIZE : 0;
	struct frame_hdr h = { .op = op, .req_id = 77, .extent_id = extent, .npages = N,
			       .wver = wver, .payload_len = len };
	struct spill_wire_hdr w;
	frame_hdr_pack(&h, &w);
	struct iovec iov = { (void *)pages, len };
	frame_seal(&w, &iov, len ? 1 : 0);
	memcpy(out, &w, sizeof(w));
	if (len)
		memcpy(out + sizeof(w), pages, len);
	return sizeof(w) + len;
}

static void send_all(int fd, const void *buf, size_t len)
{
	assert_int_equal(send(fd, buf, len, MSG_NOSIGNAL), (ssize_t)len);
}

/* The next reply on a taken-over socket: its status. */
static int reply_status(int fd, uint16_t op)
{
	struct frame_hdr h;
	assert_int_equal(raw_read_header(fd, &h), 0);
	assert_int_equal(h.op, op | SPILL_OP_REPLY);
	assert_int_equal(h.payload_len, 0);
	return h.status;
}

static void wait_connections(long long want)
{
	for (uint64_t waited = 0;; waited += 20) {
		if (srv_metric(&server, "spillway_connections") == want)
			return;
		if (waited > BOUND_MS)
			fail_msg("spillway_connections never reached %lld", want);
		poll(NULL, 0, 20); /* between scrapes; the bound is what matters */
	}
}

static long long stale_pages(void)
{
	long long v = srv_metric(&server, "spillway_errors_total{kind=\"stale\"}");
	return v < 0 ? 0 : v;
}

/* Two connections of one identity: a (the library's, write versions from
 * clock) and b, whose socket the test takes over to send frames by hand. */
struct pair {
	_Atomic uint64_t clock;
	struct client *a, *b;
	int bfd;
	uint64_t extent;
	uint8_t *buf;
};

static void pair_open(struct pair *p, const char *name)
{
	atomic_init(&p->clock, 0);
	p->a = open_as(server.url, name, NULL, &p->clock, BOUND_MS);
	p->b = open_as(server.url, name, client_token(p->a), NULL, BOUND_MS);
	p->bfd = client_fd(p->b);
	struct client_extent e;
	assert_int_equal(client_alloc_extents(p->a, 1, -1, &e), 0);
	p->extent = e.id;
	p->buf = malloc((size_t)N * SPILL_PAGE_SIZE + SPILL_WIRE_HDR_SIZE);
}

static void pair_close(struct pair *p)
{
	client_close(p->b);
	client_close(p->a);
	free(p->buf);
	wait_connections(0);
}

/* A multi-page WRITE sent half way on b, then a newer write of the same pages
 * acknowledged on a, then b's frame finished: b's is older, so the pages
 * keep a's bytes, and b hears ESTALE. Before write versions the in-place
 * receive went on writing b's bytes into a's acknowledged pages. */
static void older_write_finished_after_a_newer_one_is_fenced(void **state)
{
	(void)state;
	struct pair p;
	pair_open(&p, "order-finish");
	uint8_t frame[SPILL_WIRE_HDR_SIZE + N * SPILL_PAGE_SIZE];
	fill(p.buf, 1);
	size_t len = make_write(frame, SPILL_OP_WRITE, p.extent, 1, p.buf);
	send_all(p.bfd, frame, len / 2);
	atomic_store(&p.clock, 100); /* a's next write is version 101 */
	fill(p.buf, 2);
	assert_int_equal(client_write(p.a, p.extent, 0, N, p.buf), 0);
	long long before = stale_pages();
	send_all(p.bfd, frame + len / 2, len - len / 2);
	assert_int_equal(reply_status(p.bfd, SPILL_OP_WRITE), SPILL_ST_ESTALE);
	assert_int_equal(stale_pages() - before, N);
	expect_gen(p.a, p.extent, 2);
	pair_close(&p);
}

/* The same race with b's frame cut off half way instead: nothing of it
 * reaches the pages, before or after the cut is noticed. */
static void cut_write_leaves_the_acknowledged_pages(void **state)
{
	(void)state;
	struct pair p;
	pair_open(&p, "order-cut");
	fill(p.buf, 1);
	assert_int_equal(client_write(p.a, p.extent, 0, N, p.buf), 0);
	uint8_t frame[SPILL_WIRE_HDR_SIZE + N * SPILL_PAGE_SIZE];
	fill(p.buf, 3);
	size_t len = make_write(frame, SPILL_OP_WRITE, p.extent, 1000, p.buf); /* newer */
	send_all(p.bfd, frame, len / 2);
	expect_gen(p.a, p.extent, 1);
	client_close(p.b);
	p.b = NULL;
	wait_connections(1); /* the server has seen the cut */
	expect_gen(p.a, p.extent, 1);
	client_close(p.a);
	free(p.buf);
	wait_connections(0);
}

/* A newer write on b that arrives whole after a's older one is applied:
 * versions order writes, not arrival. */
static void newer_write_applies_whatever_its_connection(void **state)
{
	(void)state;
	struct pair p;
	pair_open(&p, "order-newer");
	fill(p.buf, 1);
	assert_int_equal(client_write(p.a, p.extent, 0, N, p.buf), 0); /* version 1 */
	uint8_t frame[SPILL_WIRE_HDR_SIZE + N * SPILL_PAGE_SIZE];
	fill(p.buf, 4);
	size_t len = make_write(frame, SPILL_OP_WRITE, p.extent, 5, p.buf);
	send_all(p.bfd, frame, len);
	assert_int_equal(reply_status(p.bfd, SPILL_OP_WRITE), SPILL_ST_OK);
	expect_gen(p.a, p.extent, 4);
	/* The same frame again (a retry): the same version applies again. */
	send_all(p.bfd, frame, len);
	assert_int_equal(reply_status(p.bfd, SPILL_OP_WRITE), SPILL_ST_OK);
	expect_gen(p.a, p.extent, 4);
	pair_close(&p);
}

/* INVALIDATE is a write too: an older WRITE after a newer INVALIDATE does
 * not bring pages back, and an older INVALIDATE does not erase newer data. */
static void invalidate_is_ordered_like_a_write(void **state)
{
	(void)state;
	struct pair p;
	pair_open(&p, "order-inval");
	fill(p.buf, 1);
	assert_int_equal(client_write(p.a, p.extent, 0, N, p.buf), 0);        /* v1 */
	assert_int_equal(client_invalidate(p.a, p.extent, 0, N), 0);          /* v2 */
	uint8_t frame[SPILL_WIRE_HDR_SIZE + N * SPILL_PAGE_SIZE];
	fill(p.buf, 5);
	send_all(p.bfd, frame, make_write(frame, SPILL_OP_WRITE, p.extent, 1, p.buf));
	assert_int_equal(reply_status(p.bfd, SPILL_OP_WRITE), SPILL_ST_ESTALE);
	uint8_t present[SPILL_PRESENT_MAP_BYTES];
	assert_int_equal(client_read(p.a, p.extent, 0, N, p.buf, present), -ENODATA);
	assert_int_equal(present[0], 0);

	fill(p.buf, 6);
	assert_int_equal(client_write(p.a, p.extent, 0, N, p.buf), 0);        /* v3 */
	send_all(p.bfd, frame, make_write(frame, SPILL_OP_INVALIDATE, p.extent, 2, NULL));
	assert_int_equal(reply_status(p.bfd, SPILL_OP_INVALIDATE), SPILL_ST_ESTALE);
	expect_gen(p.a, p.extent, 6);
	pair_close(&p);
}

/* A client that resumes its identity with a fresh clock starts above every
 * version the identity wrote with (RegisterReply.write_version): its first
 * write applies instead of being taken for a late one. */
static void resumed_identity_starts_above_its_versions(void **state)
{
	(void)state;
	_Atomic uint64_t clock;
	atomic_init(&clock, 5000);
	struct client *old = open_as(server.url, "order-resume", NULL, &clock, BOUND_MS);
	struct client_extent e;
	assert_int_equal(client_alloc_extents(old, 1, -1, &e), 0);
	uint8_t *buf = malloc((size_t)N * SPILL_PAGE_SIZE);
	fill(buf, 7);
	assert_int_equal(client_write(old, e.id, 0, N, buf), 0); /* version 5001 */
	uint8_t token[CTRL_TOKEN_BYTES];
	memcpy(token, client_token(old), sizeof(token));
	client_close(old);

	struct client *fresh = open_as(server.url, "order-resume", token, NULL, BOUND_MS);
	fill(buf, 8);
	assert_int_equal(client_write(fresh, e.id, 0, N, buf), 0);
	expect_gen(fresh, e.id, 8);
	client_close(fresh);
	free(buf);
	wait_connections(0);
}

/* The swap module's case (issue 13, point 3): a write whose connection timed
 * out reaches the server after a newer write of the same pages, sent on
 * another connection, was acknowledged. Held by a stall in the fault proxy,
 * then let through: the server fences it. */
static void timed_out_write_is_fenced_when_it_arrives(void **state)
{
	(void)state;
	struct fault_proxy *proxy;
	assert_int_equal(fault_proxy_start(&proxy, server.port), 0);
	_Atomic uint64_t clock;
	atomic_init(&clock, 0);
	struct client *fast = open_as(server.url, "order-late", NULL, &clock, BOUND_MS);
	struct client *slow = open_as(fault_proxy_url(proxy), "order-late",
				      client_token(fast), &clock, SHORT_MS);
	struct client_extent e;
	assert_int_equal(client_alloc_extents(fast, 1, -1, &e), 0);
	uint8_t *buf = malloc((size_t)N * SPILL_PAGE_SIZE);
	fill(buf, 1);
	assert_int_equal(client_write(fast, e.id, 0, N, buf), 0);

	assert_int_equal(fault_stall(proxy, 0, FAULT_C2S), 0);
	fill(buf, 9);
	assert_int_equal(client_write(slow, e.id, 0, N, buf), -ETIMEDOUT);
	fill(buf, 10);
	assert_int_equal(client_write(fast, e.id, 0, N, buf), 0);
	long long before = stale_pages();
	long long writes = srv_metric(&server, "spillway_ops_total{op=\"write\"}");
	assert_int_equal(fault_resume(proxy, 0, FAULT_C2S), 0);
	/* The held frame is acted on (fenced: every page counted stale). */
	for (uint64_t waited = 0; stale_pages() - before < N; waited += 20) {
		if (waited > BOUND_MS)
			fail_msg("the late write was never acted on");
		poll(NULL, 0, 20); /* between scrapes */
	}
	assert_int_equal(stale_pages() - before, N);
	assert_int_equal(srv_metric(&server, "spillway_ops_total{op=\"write\"}"), writes + 1);
	expect_gen(fast, e.id, 10);
	client_close(slow);
	client_close(fast);
	fault_proxy_stop(proxy);
	free(buf);
	wait_connections(0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(older_write_finished_after_a_newer_one_is_fenced),
		cmocka_unit_test(cut_write_leaves_the_acknowledged_pages),
		cmocka_unit_test(newer_write_applies_whatever_its_connection),
		cmocka_unit_test(invalidate_is_ordered_like_a_write),
		cmocka_unit_test(resumed_identity_starts_above_its_versions),
		cmocka_unit_test(timed_out_write_is_fenced_when_it_arrives),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
