/* SPDX-License-Identifier: MIT */
/*
 * Write versions and staged WRITEs (protocol version 2) against a peer that
 * pushes at their edges, on a real spillwayd:
 *
 * 1. Every WRITE larger than the 64 KiB stage takes --frame-buffer-max
 *    budget. An identity that announces large frames and never finishes
 *    them holds at most its --frame-buffer-per-client share, so another
 *    identity's WRITE goes on at once (not after --write-stall-timeout).
 * 2. A write version of 2^63 or more is malformed; at the largest valid
 *    one, a client resuming the identity gets -EOVERFLOW, never a clock
 *    that wraps to 0 and has its every write fenced.
 * 3. A WRITE of the identity still arriving when another process resumes
 *    it, whether the server has read its header yet or not, is older than
 *    the resumed clock (RegisterReply.write_version counts frames from
 *    their header on, and a clock behind it starts 2^32 above it), so when
 *    it completes it cannot undo that process's acknowledged write.
 */
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "frame.h"
#include "harness.h"
#include "srv_raw.h"

#define BOUND_MS 20000 /* only there to fail instead of hanging */
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
#define CLIENT_MS 6000
#else
#define CLIENT_MS 3000
#endif

static struct srv server;

static struct client *open_as(const char *name, const uint8_t *token, int timeout_ms)
{
	struct client_opts o = { .name = name, .token = token, .timeout_ms = timeout_ms };
	struct client *c = NULL;
	int rc = client_connect(server.url, &o, &c, NULL, 0);
	if (rc)
		fail_msg("connect as %s: %d", name, rc);
	return c;
}

/* A sealed WRITE header of npages pages at page 0 of extent, version wver,
 * whose payload follows (sealed over payload when it is given). */
static void send_write_header(int fd, uint64_t extent, uint16_t npages, uint64_t wver,
			      const uint8_t *payload)
{
	uint32_t len = (uint32_t)npages * SPILL_PAGE_SIZE;
	struct frame_hdr h = { .op = SPILL_OP_WRITE, .req_id = 9, .extent_id = extent,
			       .npages = npages, .wver = wver, .payload_len = len };
	struct spill_wire_hdr w;
	frame_hdr_pack(&h, &w);
	struct iovec iov = { (void *)payload, len };
	frame_seal(&w, payload ? &iov : NULL, payload ? 1 : 0);
	assert_int_equal(send(fd, &w, sizeof(w), MSG_NOSIGNAL), (ssize_t)sizeof(w));
}

/* --- 1. the frame-buffer budget now gates every large WRITE -------------- */

#define HOG_CONNS 4                      /* 1 MiB each: the whole budget below */
#define HONEST_PAGES 32                  /* 128 KiB: beyond the 64 KiB stage */

/* One identity tries to hold the whole budget with control frames it never
 * finishes (as it could with large WRITEs); another identity's WRITE must
 * not wait for it. */
static void unfinished_frames_of_one_client_leave_anothers_writes_alone(void **state)
{
	(void)state;
	assert_int_equal(srv_start(&server, "--capacity", "64M", "--workers", "1",
				   "--frame-buffer-max", "4M", NULL), 0);
	/* The hog: a registered identity whose sockets the test takes over. */
	struct client *hog[HOG_CONNS];
	hog[0] = open_as("hog", NULL, BOUND_MS);
	for (int i = 1; i < HOG_CONNS; i++)
		hog[i] = open_as("hog", client_token(hog[0]), BOUND_MS);
	for (int i = 0; i < HOG_CONNS; i++) {
		int fd = client_fd(hog[i]);
		raw_send_header(fd, SPILL_OP_CTRL, SPILL_MAX_CTRL_PAYLOAD, 0);
		uint8_t some[4096] = { 0 };
		assert_int_equal(send(fd, some, sizeof(some), MSG_NOSIGNAL), (ssize_t)sizeof(some));
	}
	/* The hog holds its identity's share of the budget, and its other
	 * frames wait for it. */
	assert_true(raw_wait_metric(&server, "spillway_frame_buffer_share_waits_total", 1) >= 1);
	assert_true(srv_metric(&server, "spillway_frame_buffer_bytes") >= SPILL_MAX_CTRL_PAYLOAD);

	/* Another identity writes 128 KiB: under version 1 received in place,
	 * needing no budget. */
	struct client *honest = open_as("honest", NULL, CLIENT_MS);
	struct client_extent e;
	assert_int_equal(client_alloc_extents(honest, 1, -1, &e), 0);
	uint8_t *buf = malloc((size_t)HONEST_PAGES * SPILL_PAGE_SIZE);
	for (int i = 0; i < HONEST_PAGES; i++)
		fill_page(buf + (size_t)i * SPILL_PAGE_SIZE, 4200 + (uint64_t)i);
	int rc = client_write(honest, e.id, 0, HONEST_PAGES, buf);
	long long waits = srv_metric(&server, "spillway_frame_buffer_waits_total");
	print_message("honest 128 KiB WRITE: %d; frame buffer waits %lld\n", rc, waits);
	client_close(honest);
	for (int i = 0; i < HOG_CONNS; i++)
		client_close(hog[i]);
	free(buf);
	assert_int_equal(srv_stop(&server), 0);
	assert_int_equal(rc, 0);
}

/* --- 2. the largest write version poisons the identity ------------------- */

static int reply_status(int fd)
{
	struct frame_hdr h;
	assert_int_equal(raw_read_header(fd, &h), 0);
	return h.status;
}

/* A version of 2^63 or more is malformed: the connection closes. At the
 * largest valid one, a client resuming the identity gets a clear
 * -EOVERFLOW, never a clock that wraps to 0 and has every write fenced. */
static void largest_version_does_not_fence_a_resumed_client_for_ever(void **state)
{
	(void)state;
	assert_int_equal(srv_start(&server, "--capacity", "16M", NULL), 0);
	struct client *old = open_as("max-version", NULL, BOUND_MS);
	struct client_extent e;
	assert_int_equal(client_alloc_extents(old, 1, -1, &e), 0);
	uint8_t token[CTRL_TOKEN_BYTES];
	memcpy(token, client_token(old), sizeof(token));
	uint8_t page[SPILL_PAGE_SIZE];
	fill_page(page, 1);
	int fd = client_fd(old);
	send_write_header(fd, e.id, 1, UINT64_MAX, page);
	assert_int_equal(send(fd, page, sizeof(page), MSG_NOSIGNAL), (ssize_t)sizeof(page));
	assert_true(raw_wait_closed(fd) >= 0);
	client_close(old);
	assert_true(srv_log_has(&server, "write version at or above 2^63"));

	old = open_as("max-version", token, BOUND_MS);
	fd = client_fd(old);
	send_write_header(fd, e.id, 1, SPILL_WVER_LIMIT - 1, page);
	assert_int_equal(send(fd, page, sizeof(page), MSG_NOSIGNAL), (ssize_t)sizeof(page));
	assert_int_equal(reply_status(fd), SPILL_ST_OK);
	client_close(old);

	struct client *fresh = open_as("max-version", token, BOUND_MS);
	fill_page(page, 2);
	assert_int_equal(client_write(fresh, e.id, 0, 1, page), -EOVERFLOW);
	assert_int_equal(client_dead(fresh), 0); /* refused before it left */
	client_close(fresh);
	assert_int_equal(srv_stop(&server), 0);
}

/* --- 3. a resumed identity's clock ignores writes still in flight -------- */

#define RP 8 /* pages */

static void fill_gen(uint8_t *buf, uint64_t gen)
{
	raw_fill_gen(buf, RP, gen);
}

/* The old process acknowledged writes up to version 999, and its next write
 * (version 1000) is half received on one of its connections when a new
 * process resumes the identity. RegisterReply.write_version counts committed
 * writes only (999), so the new process's first write gets 1000 (or 1001),
 * is acknowledged, and is then overwritten by the old process's frame when
 * it completes: a write the client already superseded in real time undoes an
 * acknowledged one. */
static void resumed_clock_is_above_writes_in_flight(void **state)
{
	(void)state;
	assert_int_equal(srv_start(&server, "--capacity", "16M", NULL), 0);
	_Atomic uint64_t old_clock;
	atomic_init(&old_clock, 998);
	struct client_opts o = { .name = "resume-late", .timeout_ms = BOUND_MS,
				 .write_clock = &old_clock };
	struct client *old = NULL;
	assert_int_equal(client_connect(server.url, &o, &old, NULL, 0), 0);
	o.token = client_token(old);
	struct client *old2 = NULL;
	assert_int_equal(client_connect(server.url, &o, &old2, NULL, 0), 0);
	struct client_extent e;
	assert_int_equal(client_alloc_extents(old, 1, -1, &e), 0);
	uint8_t *buf = malloc((size_t)RP * SPILL_PAGE_SIZE);
	fill_gen(buf, 1);
	assert_int_equal(client_write(old, e.id, 0, RP, buf), 0); /* version 999 */

	/* The old process's next write, half way in on its second connection. */
	fill_gen(buf, 2);
	int fd = client_fd(old2);
	send_write_header(fd, e.id, RP, 1000, buf);
	size_t len = (size_t)RP * SPILL_PAGE_SIZE;
	assert_int_equal(send(fd, buf, len / 2, MSG_NOSIGNAL), (ssize_t)(len / 2));

	/* A new process resumes the identity and writes the same pages. */
	uint8_t token[CTRL_TOKEN_BYTES];
	memcpy(token, client_token(old), sizeof(token));
	struct client *fresh = open_as("resume-late", token, BOUND_MS);
	fill_gen(buf, 3);
	assert_int_equal(client_write(fresh, e.id, 0, RP, buf), 0);

	/* The old frame completes. */
	fill_gen(buf, 2);
	assert_int_equal(send(fd, buf + len / 2, len - len / 2, MSG_NOSIGNAL),
			 (ssize_t)(len - len / 2));
	int st = reply_status(fd);
	assert_int_equal(client_read(fresh, e.id, 0, RP, buf, NULL), 0);
	int gen3 = raw_is_gen(buf, RP, 3);
	print_message("old frame (v1000) after the resumed client's acknowledged write: "
		      "status %d; pages hold the acknowledged write: %d\n", st, gen3);
	client_close(fresh);
	client_close(old2);
	client_close(old);
	free(buf);
	assert_int_equal(srv_stop(&server), 0);
	assert_true(gen3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(unfinished_frames_of_one_client_leave_anothers_writes_alone),
		cmocka_unit_test(largest_version_does_not_fence_a_resumed_client_for_ever),
		cmocka_unit_test(resumed_clock_is_above_writes_in_flight),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
