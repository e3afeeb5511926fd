/* SPDX-License-Identifier: MIT */
/*
 * A WRITE of the old process that the server has not even parsed when a new
 * process resumes the identity (its connection stopped reading: a READ
 * reply's pages are still leaving) cannot undo the new process's
 * acknowledged write once it is read. RegisterReply.write_version counts
 * only the headers the server has seen; a clock behind it belongs to
 * another process and starts 2^32 above it (lib/client.c), past anything
 * the old one can have on its way.
 *
 * The old process: writes the extent at version 999, then on a second
 * connection asks for 16 READs of the whole extent (32 MiB of replies) that
 * it does not read, and sends a whole WRITE at version 1000, its next. A
 * new process resumes the identity and writes gen 3 (acknowledged). The old
 * connection's replies are then read; the old frame is parsed last and
 * fenced. The pages must still hold gen 3.
 */
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
#define RP 8           /* pages of the contested write */
#define NREADS 16
#define WRITE_REQ 9

static struct srv server;

static void send_frame(int fd, const struct frame_hdr *h, const uint8_t *payload)
{
	struct spill_wire_hdr w;
	frame_hdr_pack(h, &w);
	struct iovec iov = { (void *)payload, h->payload_len };
	frame_seal(&w, payload ? &iov : NULL, payload ? 1 : 0);
	assert_int_equal(send(fd, &w, sizeof(w), MSG_NOSIGNAL), (ssize_t)sizeof(w));
	size_t off = 0;
	while (payload && off < h->payload_len) {
		ssize_t n = send(fd, payload + off, h->payload_len - off, MSG_NOSIGNAL);
		assert_true(n > 0);
		off += (size_t)n;
	}
}

static void recv_all(int fd, void *buf, size_t len)
{
	size_t got = 0;
	while (got < len) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		assert_int_equal(poll(&p, 1, BOUND_MS), 1);
		ssize_t n = recv(fd, (uint8_t *)buf + got, len - got, 0);
		assert_true(n > 0);
		got += (size_t)n;
	}
}

/* Read replies off fd until the one to req_id; its status. */
static int reply_to(int fd, uint64_t req_id)
{
	static uint8_t sink[SPILL_MAX_PAYLOAD];
	for (;;) {
		struct spill_wire_hdr w;
		recv_all(fd, &w, sizeof(w));
		struct frame_hdr h;
		assert_int_equal(frame_hdr_unpack(&w, &h, NULL), 0);
		assert_true(h.payload_len <= sizeof(sink));
		recv_all(fd, sink, h.payload_len);
		if (h.req_id == req_id)
			return h.status;
	}
}

static void resumed_clock_is_above_writes_not_yet_parsed(void **state)
{
	(void)state;
	assert_int_equal(srv_start(&server, "--capacity", "16M", "--conn-output-max", "1M",
				   NULL), 0);
	_Atomic uint64_t old_clock;
	atomic_init(&old_clock, 998);
	struct client_opts o = { .name = "resume-unparsed", .timeout_ms = BOUND_MS,
				 .write_clock = &old_clock };
	struct client *old = NULL, *old2 = NULL;
	assert_int_equal(client_connect(server.url, &o, &old, NULL, 0), 0);
	o.token = client_token(old);
	assert_int_equal(client_connect(server.url, &o, &old2, NULL, 0), 0);
	struct client_extent e;
	assert_int_equal(client_alloc_extents(old, 1, -1, &e), 0);
	size_t ext_bytes = (size_t)SPILL_MAX_BATCH_PAGES * SPILL_PAGE_SIZE;
	uint8_t *buf = malloc(ext_bytes);
	raw_fill_gen(buf, SPILL_MAX_BATCH_PAGES, 1);
	assert_int_equal(client_write(old, e.id, 0, SPILL_MAX_BATCH_PAGES, buf), 0); /* v999 */

	/* The old process's last bytes: READs it never reads, then a WRITE. */
	int fd = client_fd(old2);
	for (int i = 0; i < NREADS; i++) {
		struct frame_hdr r = { .op = SPILL_OP_READ, .req_id = 100 + (uint64_t)i,
				       .extent_id = e.id, .npages = SPILL_MAX_BATCH_PAGES };
		send_frame(fd, &r, NULL);
	}
	raw_fill_gen(buf, RP, 2);
	struct frame_hdr wh = { .op = SPILL_OP_WRITE, .req_id = WRITE_REQ, .extent_id = e.id,
				.npages = RP, .wver = 1000,
				.payload_len = RP * SPILL_PAGE_SIZE };
	send_frame(fd, &wh, buf);

	/* A new process resumes the identity and writes the same pages. */
	uint8_t token[CTRL_TOKEN_BYTES];
	memcpy(token, client_token(old), sizeof(token));
	struct client_opts fo = { .name = "resume-unparsed", .token = token,
				  .timeout_ms = BOUND_MS };
	struct client *fresh = NULL;
	assert_int_equal(client_connect(server.url, &fo, &fresh, NULL, 0), 0);
	raw_fill_gen(buf, RP, 3);
	assert_int_equal(client_write(fresh, e.id, 0, RP, buf), 0);

	/* The old connection is read again: its WRITE is parsed at last. */
	int st = reply_to(fd, WRITE_REQ);
	assert_int_equal(client_read(fresh, e.id, 0, RP, buf, NULL), 0);
	int gen3 = raw_is_gen(buf, RP, 3);
	print_message("old WRITE v1000, parsed after the resume: status %d; the pages hold "
		      "the resumed client's acknowledged write: %d\n", st, gen3);
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
		cmocka_unit_test(resumed_clock_is_above_writes_not_yet_parsed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
