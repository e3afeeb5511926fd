/* SPDX-License-Identifier: MIT */
/*
 * Bad input costs nothing: each malformed frame closes only its own
 * connection, with one log line naming the peer, while a client working
 * beside it sees no error and every byte it wrote still verifies.
 */
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "frame.h"
#include "harness.h"

static struct srv server;

static int raw_connect(const struct srv *s)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)s->port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	return fd;
}

/* Read and discard until the server closes; returns bytes read, or -1 if it
 * did not close within the bound. */
static long wait_closed(int fd)
{
	static char sink[1 << 16];
	long total = 0;
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		if (poll(&p, 1, 10000) <= 0)
			return -1;
		ssize_t n = recv(fd, sink, sizeof(sink), 0);
		if (n <= 0)
			return total;
		total += n;
	}
}

/* A well-formed header for op, sealed over payload. */
static void make_frame(struct spill_wire_hdr *w, uint16_t op, uint64_t req_id,
		       const void *payload, uint32_t len, uint16_t npages)
{
	struct frame_hdr h = { .op = op, .req_id = req_id, .payload_len = len, .npages = npages };
	frame_hdr_pack(&h, w);
	struct iovec iov = { (void *)payload, len };
	frame_seal(w, &iov, len ? 1 : 0);
}

static void send_all(int fd, const void *buf, size_t len)
{
	assert_int_equal(send(fd, buf, len, MSG_NOSIGNAL), (ssize_t)len);
}

/* --- a client that keeps working the whole time ------------------------- */

static atomic_int stop_bystander;
static atomic_int bystander_errors;
static atomic_long bystander_rounds;

static void *bystander(void *arg)
{
	(void)arg;
	struct client_opts o = { .name = "bystander", .timeout_ms = 20000 };
	struct client *c;
	if (client_connect(server.url, &o, &c, NULL, 0)) {
		atomic_fetch_add(&bystander_errors, 1);
		return NULL;
	}
	struct client_extent e;
	if (client_alloc_extents(c, 1, -1, &e)) {
		atomic_fetch_add(&bystander_errors, 1);
		client_close(c);
		return NULL;
	}
	uint8_t page[SPILL_PAGE_SIZE];
	for (long round = 0; !atomic_load(&stop_bystander) || round < 50; round++) {
		uint32_t p = (uint32_t)(round % e.npages);
		fill_page(page, (uint64_t)round);
		if (client_write(c, e.id, p, 1, page) ||
		    client_read(c, e.id, p, 1, page, NULL) || !check_page(page, (uint64_t)round))
			atomic_fetch_add(&bystander_errors, 1);
		atomic_fetch_add(&bystander_rounds, 1);
	}
	client_close(c);
	return NULL;
}

/* --- the bad inputs ------------------------------------------------------ */

struct bad_case {
	const char *what;
	const char *log_text; /* what the server must say about it */
	void (*send)(int fd);
};

static void send_random_bytes(int fd)
{
	uint8_t junk[1024];
	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (uint8_t)(i * 131 + 7);
	send_all(fd, junk, sizeof(junk));
}

static void send_bad_version(int fd)
{
	struct spill_wire_hdr w;
	make_frame(&w, SPILL_OP_PING, 1, NULL, 0, 0);
	w.version = 9;
	send_all(fd, &w, sizeof(w));
}

static void send_bad_crc(int fd)
{
	struct spill_wire_hdr w;
	make_frame(&w, SPILL_OP_PING, 1, NULL, 0, 0);
	w.crc ^= 1;
	send_all(fd, &w, sizeof(w));
}

static void send_oversize_length(int fd)
{
	struct spill_wire_hdr w;
	make_frame(&w, SPILL_OP_WRITE, 1, NULL, 0, 1);
	w.payload_len = 0x7fffffff;
	send_all(fd, &w, sizeof(w));
}

static void send_write_length_mismatch(int fd)
{
	struct spill_wire_hdr w;
	make_frame(&w, SPILL_OP_WRITE, 1, NULL, 0, 2);
	w.payload_len = SPILL_PAGE_SIZE; /* two pages announced, one sent */
	send_all(fd, &w, sizeof(w));
}

static void send_unknown_op(int fd)
{
	struct spill_wire_hdr w;
	make_frame(&w, 77, 1, NULL, 0, 0);
	send_all(fd, &w, sizeof(w));
}

static void send_reply_frame(int fd)
{
	struct spill_wire_hdr w;
	make_frame(&w, SPILL_OP_PING | SPILL_OP_REPLY, 1, NULL, 0, 0);
	send_all(fd, &w, sizeof(w));
}

static void send_ctrl_garbage(int fd)
{
	uint8_t junk[64];
	memset(junk, 0xff, sizeof(junk));
	struct spill_wire_hdr w;
	make_frame(&w, SPILL_OP_CTRL, 1, junk, sizeof(junk), 0);
	send_all(fd, &w, sizeof(w));
	send_all(fd, junk, sizeof(junk));
}

static void send_truncated_frame(int fd)
{
	struct spill_wire_hdr w;
	make_frame(&w, SPILL_OP_PING, 1, NULL, 0, 0);
	send_all(fd, &w, 20);
	shutdown(fd, SHUT_WR);
}

static void bad_frames_close_only_their_connection(void **state)
{
	(void)state;
	static const struct bad_case cases[] = {
		{ "random bytes", "bad magic", send_random_bytes },
		{ "wrong version", "unsupported version", send_bad_version },
		{ "bad checksum", "checksum mismatch", send_bad_crc },
		{ "oversize length", "payload too large", send_oversize_length },
		{ "WRITE length mismatch", "WRITE payload is not npages pages", send_write_length_mismatch },
		{ "unknown op", "unknown op", send_unknown_op },
		{ "reply from a client", "client sent a reply frame", send_reply_frame },
		{ "undecodable control message", "undecodable protobuf", send_ctrl_garbage },
		{ "truncated frame", "closed inside a frame", send_truncated_frame },
	};
	pthread_t th;
	atomic_store(&stop_bystander, 0);
	pthread_create(&th, NULL, bystander, NULL);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int fd = raw_connect(&server);
		cases[i].send(fd);
		if (wait_closed(fd) < 0)
			fail_msg("%s: server did not close the connection", cases[i].what);
		close(fd);
		if (!srv_log_has(&server, cases[i].log_text))
			fail_msg("%s: no log line saying '%s'", cases[i].what, cases[i].log_text);
	}
	atomic_store(&stop_bystander, 1);
	pthread_join(th, NULL);
	assert_int_equal(atomic_load(&bystander_errors), 0);
	assert_true(atomic_load(&bystander_rounds) >= 50);
	assert_true(srv_metric(&server, "spillway_errors_total{kind=\"protocol\"}") >= 8);
	assert_int_equal(srv_metric(&server, "spillway_errors_total{kind=\"crc\"}"), 1);
	/* The peer is named in the log line. */
	assert_true(srv_log_has(&server, "127.0.0.1:"));
}

static void data_before_the_handshake_closes_the_connection(void **state)
{
	(void)state;
	int fd = raw_connect(&server);
	uint8_t page[SPILL_PAGE_SIZE] = { 0 };
	struct spill_wire_hdr w;
	struct frame_hdr h = { .op = SPILL_OP_WRITE, .req_id = 5, .extent_id = 1,
			       .npages = 1, .payload_len = SPILL_PAGE_SIZE };
	frame_hdr_pack(&h, &w);
	struct iovec iov = { page, sizeof(page) };
	frame_seal(&w, &iov, 1);
	send_all(fd, &w, sizeof(w));
	send_all(fd, page, sizeof(page));
	assert_int_equal(wait_closed(fd), 0); /* closed, and nothing answered */
	close(fd);
	assert_true(srv_log_has(&server, "data frame before the handshake finished"));
}

static void too_many_requests_in_flight_closes_the_connection(void **state)
{
	(void)state;
	struct srv s = { 0 };
	assert_int_equal(srv_start(&s, "--capacity", "16M", "--max-inflight", "4", NULL), 0);
	struct client *c = connect_as(&s, "flood", NULL);
	assert_int_equal(client_window(c), 4);
	struct client_extent e;
	assert_int_equal(client_alloc_extents(c, 1, -1, &e), 0);
	/* Leave the last page unwritten: replies then carry a presence map and
	 * are queued by copy. (Whole present ranges go out zero-copy, and while
	 * one is unsent the server reads nothing more from that client, so a
	 * client that does not read only stalls itself.) */
	uint8_t *buf = calloc(SPILL_MAX_BATCH_PAGES, SPILL_PAGE_SIZE);
	assert_int_equal(client_write(c, e.id, 0, SPILL_MAX_BATCH_PAGES - 1, buf), 0);
	free(buf);
	/* Bypass the library's window: 64 whole-extent READs in one send, so the
	 * server has them all before it can answer any. */
	int fd = client_fd(c);
	enum { FLOOD = 64 };
	struct spill_wire_hdr flood[FLOOD];
	for (int i = 0; i < FLOOD; i++) {
		struct frame_hdr h = { .op = SPILL_OP_READ, .req_id = 1000 + (uint64_t)i,
				       .extent_id = e.id, .npages = SPILL_MAX_BATCH_PAGES };
		frame_hdr_pack(&h, &flood[i]);
		frame_seal(&flood[i], NULL, 0);
	}
	send_all(fd, flood, sizeof(flood));
	/* Not reading, the socket buffers fill after a few replies and the rest
	 * queue in the server, past the window. Wait (bounded) for its verdict. */
	long tripped = 0;
	for (int i = 0; i < 1000 && tripped < 1; i++) {
		tripped = srv_metric(&s, "spillway_errors_total{kind=\"inflight\"}");
		if (tripped < 1)
			poll(NULL, 0, 10);
	}
	assert_int_equal(tripped, 1);
	long got = wait_closed(fd);
	assert_true(got >= 0);
	assert_true(got < (long)FLOOD * (SPILL_WIRE_HDR_SIZE + SPILL_PRESENT_MAP_BYTES +
					 SPILL_MAX_BATCH_PAGES * SPILL_PAGE_SIZE));
	assert_true(srv_log_has(&s, "too many requests in flight"));
	client_close(c);
	/* Everyone else is still served. */
	struct client *ok = connect_as(&s, "after-flood", NULL);
	assert_int_equal(client_ping(ok), 0);
	client_close(ok);
	assert_int_equal(srv_stop(&s), 0);
}

/* KEY asks for an RDMA remote key: on a TCP connection it is refused with
 * a code, no key is sent, and the connection carries on. */
static void key_request_over_tcp_is_refused_with_a_code(void **state)
{
	(void)state;
	struct client *c = connect_as(&server, "key-over-tcp", NULL);
	struct client_extent e;
	assert_int_equal(client_alloc_extents(c, 1, -1, &e), 0);
	uint8_t *page = malloc(SPILL_PAGE_SIZE);
	fill_page(page, 31);
	assert_int_equal(client_write(c, e.id, 0, 1, page), 0);

	/* The library has nothing in flight: send KEY by hand and read its
	 * reply off the socket before the library looks again. */
	struct spill_wire_hdr w;
	struct frame_hdr h = { .op = SPILL_OP_KEY, .req_id = 77, .extent_id = e.id };
	frame_hdr_pack(&h, &w);
	frame_seal(&w, NULL, 0);
	int fd = client_fd(c);
	send_all(fd, &w, sizeof(w));
	struct spill_wire_hdr rw;
	size_t got = 0;
	while (got < sizeof(rw)) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		assert_int_equal(poll(&p, 1, 10000), 1);
		ssize_t n = recv(fd, (uint8_t *)&rw + got, sizeof(rw) - got, 0);
		assert_true(n > 0);
		got += (size_t)n;
	}
	struct frame_hdr r;
	const char *why = NULL;
	assert_int_equal(frame_hdr_unpack(&rw, &r, &why), 0);
	assert_int_equal(r.op, SPILL_OP_KEY | SPILL_OP_REPLY);
	assert_int_equal(r.req_id, 77);
	assert_int_equal(r.status, SPILL_ST_ENOTSUP);
	assert_int_equal(r.payload_len, 0);

	memset(page, 0, SPILL_PAGE_SIZE);
	assert_int_equal(client_read(c, e.id, 0, 1, page, NULL), 0);
	assert_true(check_page(page, 31));
	free(page);
	client_close(c);
}

static int setup(void **state)
{
	(void)state;
	return srv_start(&server, "--capacity", "32M", NULL);
}

static int teardown(void **state)
{
	(void)state;
	return srv_stop(&server) == 0 ? 0 : -1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(bad_frames_close_only_their_connection),
		cmocka_unit_test(data_before_the_handshake_closes_the_connection),
		cmocka_unit_test(too_many_requests_in_flight_closes_the_connection),
		cmocka_unit_test(key_request_over_tcp_is_refused_with_a_code),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
