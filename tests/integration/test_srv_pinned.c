/* SPDX-License-Identifier: MIT */
/*
 * Pinned replies stay charged: a client that frees extents while their
 * zero-copy READ replies sit unread on connections it never drains keeps
 * paying for those blocks. It reaches its own limit (EDQUOT), another
 * client's reservation stays whole, status shows the pinned bytes, and the
 * charge goes once the connections close.
 */
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "ctrl.h"
#include "frame.h"
#include "harness.h"
#include "srv_raw.h"

#define MB (1ull << 20)
#define EXTENT (2 * MB)

static void send_all(int fd, const void *buf, size_t len)
{
	assert_int_equal(send(fd, buf, len, MSG_NOSIGNAL), (ssize_t)len);
}

static void recv_all(int fd, void *buf, size_t len)
{
	for (size_t got = 0; got < len;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		assert_int_equal(poll(&p, 1, 20000), 1);
		ssize_t n = recv(fd, (uint8_t *)buf + got, len - got, 0);
		assert_true(n > 0);
		got += (size_t)n;
	}
}

/* One control request on a raw socket; its reply. */
static Spillway__Ctrl *raw_ctrl(int fd, Spillway__Ctrl *m)
{
	static uint64_t req_id = 1;
	uint8_t buf[4096];
	int len = ctrl_pack(m, buf, sizeof(buf));
	assert_true(len > 0);
	struct spill_wire_hdr w;
	struct frame_hdr h = { .op = SPILL_OP_CTRL, .req_id = req_id++, .payload_len = (uint32_t)len };
	frame_hdr_pack(&h, &w);
	struct iovec iov = { buf, (size_t)len };
	frame_seal(&w, &iov, 1);
	send_all(fd, &w, sizeof(w));
	send_all(fd, buf, (size_t)len);
	const char *why;
	recv_all(fd, &w, sizeof(w));
	assert_int_equal(frame_hdr_unpack(&w, &h, &why), 0);
	assert_true(h.payload_len <= sizeof(buf));
	recv_all(fd, buf, h.payload_len);
	int err;
	Spillway__Ctrl *r = ctrl_unpack(buf, h.payload_len, &err, &why);
	assert_non_null(r);
	return r;
}

/*
 * A connection of identity token that asks for the whole extent again and
 * again and never reads a reply, so the server keeps the extent pinned by the
 * reply it could not finish. Returns once the server serves the burst.
 */
static int pin_extent(const struct srv *s, const char *name, const uint8_t *token, uint64_t id)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int small = 4096;
	assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small)), 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)s->port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);

	uint8_t nonce[CTRL_NONCE_BYTES];
	Spillway__Hello hello;
	Spillway__Ctrl m;
	raw_hello_msg(&m, &hello, nonce);
	Spillway__Ctrl *r = raw_ctrl(fd, &m);
	assert_int_equal(r->msg_case, SPILLWAY__CTRL__MSG_HELLO_REPLY);
	ctrl_free(r);

	Spillway__Register reg = SPILLWAY__REGISTER__INIT;
	reg.name = (char *)name;
	reg.token.data = (uint8_t *)token;
	reg.token.len = CTRL_TOKEN_BYTES;
	m.msg_case = SPILLWAY__CTRL__MSG_REGISTER;
	m.register_ = &reg;
	r = raw_ctrl(fd, &m);
	assert_int_equal(r->msg_case, SPILLWAY__CTRL__MSG_REGISTER_REPLY);
	ctrl_free(r);

	struct spill_wire_hdr w;
	struct frame_hdr h = { .op = SPILL_OP_READ, .req_id = 99, .extent_id = id,
			       .npages = SPILL_MAX_BATCH_PAGES };
	frame_hdr_pack(&h, &w);
	frame_seal(&w, NULL, 0);
	/* 16 MiB of replies: more than any socket buffer takes, so one of
	 * them stops part way and pins the extent. */
	struct spill_wire_hdr burst[8];
	for (int i = 0; i < 8; i++)
		burst[i] = w;
	long long before = srv_metric(s, "spillway_ops_total{op=\"read\"}");
	send_all(fd, burst, sizeof(burst));
	/* The burst is being served (it comes in one segment and is served in
	 * one go until a reply stops). */
	for (int i = 0; i < 2000 && srv_metric(s, "spillway_ops_total{op=\"read\"}") < before + 2; i++)
		nanosleep(&(struct timespec){ 0, 5 * 1000 * 1000 }, NULL);
	return fd;
}

static uint64_t status_pinned(struct client *admin, uint64_t *used)
{
	Spillway__Ctrl *rep = admin_status(admin);
	uint64_t pinned = rep->admin_status_reply->pinned_bytes;
	*used = rep->admin_status_reply->used_bytes;
	ctrl_free(rep);
	return pinned;
}

static void unread_replies_count_against_the_owner(void **state)
{
	(void)state;
	struct srv s = { 0 };
	/* 32 extents; honest holds 12 of them reserved by the operator. */
	srv_write_config(&s, "[client honest]\nreservation = 24M\n");
	assert_int_equal(srv_start(&s, "--capacity", "64M", "--config", s.config_path, NULL), 0);

	struct client_opts ao = { .name = "attacker", .limit = 8 * MB, .timeout_ms = 20000 };
	struct client *att;
	assert_int_equal(client_connect(s.url, &ao, &att, NULL, 0), 0);
	/* Every page written: only a READ of present pages goes out zero-copy. */
	static uint8_t data[EXTENT];
	for (size_t p = 0; p < EXTENT / SPILL_PAGE_SIZE; p++)
		fill_page(data + p * SPILL_PAGE_SIZE, p);

	/* Allocate, write, pin with an unread READ, free; again and again. */
	int pins[40], npins = 0, err = 0;
	for (int round = 0; round < 40; round++) {
		struct client_extent e;
		if ((err = client_alloc_extents(att, 1, -1, &e)))
			break;
		assert_int_equal(client_write(att, e.id, 0, SPILL_MAX_BATCH_PAGES, data), 0);
		pins[npins++] = pin_extent(&s, "attacker", client_token(att), e.id);
		uint64_t id = e.id;
		assert_int_equal(client_free_extents(att, &id, 1), 0);
	}
	/* Its own limit stops it: all of its 8 MiB is pinned. */
	assert_int_equal(err, -EDQUOT);
	assert_true(npins >= 4);

	struct client *admin = connect_as(&s, "operator", NULL);
	uint64_t used, pinned = status_pinned(admin, &used);
	assert_int_equal(pinned, 8 * MB);
	assert_true(used >= 8 * MB);
	assert_int_equal(srv_metric(&s, "spillway_pinned_bytes"), (long long)(8 * MB));
	char out[8192];
	assert_int_equal(run_capture(out, sizeof(out), SPILLCTL_PATH, "--server", s.url, "--json",
				     "status", NULL),
			 0);
	assert_non_null(strstr(out, "\"pinned_bytes\":8388608,"));

	/* The reservation is whole: all 12 extents, and the rest beside. */
	struct client *honest = connect_as(&s, "honest", NULL);
	struct client_extent got[12];
	assert_int_equal(client_alloc_extents(honest, 12, -1, got), 0);

	/* The readers go: the blocks come back and stop counting. */
	for (int i = 0; i < npins; i++)
		close(pins[i]);
	for (int i = 0; i < 2000 && srv_metric(&s, "spillway_pinned_bytes") != 0; i++)
		nanosleep(&(struct timespec){ 0, 10 * 1000 * 1000 }, NULL);
	assert_int_equal(status_pinned(admin, &used), 0);
	struct client_extent again;
	assert_int_equal(client_alloc_extents(att, 1, -1, &again), 0);

	client_close(honest);
	client_close(admin);
	client_close(att);
	assert_int_equal(srv_stop(&s), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(unread_replies_count_against_the_owner),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
