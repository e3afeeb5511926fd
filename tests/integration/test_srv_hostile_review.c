/* SPDX-License-Identifier: MIT */
/*
 * Review of issue 12 (hostile and broken peers): attacks that the limits of
 * admission.c and conn.c were meant to stop, each against a real spillwayd
 * with small limits. Each test states the attack and what must still hold.
 */
#include <sys/socket.h>
#include <sys/un.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "ctrl.h"
#include "srv_raw.h"

static struct srv server;

/* Findings not fixed yet are skipped; REVIEW_NO_SKIP=1 runs them (they fail). */
#define SKIP_OPEN_FINDING()                     \
	do {                                    \
		if (!getenv("REVIEW_NO_SKIP"))  \
			skip();                 \
	} while (0)

/* --- the server-wide output cap must not lock newcomers out ----------- */

#define HOGS 4
#define HOG_REQS 1024
#define HOG_PAGES 8 /* 32 KiB replies: copied into the output queue */

/* A few connections of one peer queue READ replies they never read until
 * the server-wide --output-max is near; the peer keeps them open (a slow
 * reader would also keep resetting the write-stall clock). A newcomer's
 * HELLO must still be answered: holding every connection's input while the
 * server-wide total is high lets one peer time out everyone's handshake. */
static void output_hog_does_not_block_newcomers_handshake(void **state)
{
	(void)state;
	SKIP_OPEN_FINDING(); /* FINDING (not fixed): conn.c can_dispatch/flush hold
			      * every connection once admission_output_room() is
			      * false, including HELLO/Register of newcomers, whose
			      * handshake timeout then closes them. */
	assert_int_equal(srv_start(&server, "--capacity", "64M", "--conn-output-max", "4M",
				   "--output-max", "8M", "--write-stall-timeout", "600",
				   "--handshake-timeout", "3", NULL), 0);
	struct client *bad[HOGS];
	static struct client_req reqs[HOGS][HOG_REQS];
	static uint8_t sink[HOG_PAGES * SPILL_PAGE_SIZE];
	struct client_extent ext[HOGS];
	for (int i = 0; i < HOGS; i++) {
		char name[32];
		snprintf(name, sizeof(name), "hog-%d", i);
		bad[i] = connect_as(&server, name, NULL);
		assert_int_equal(client_alloc_extents(bad[i], 1, -1, &ext[i]), 0);
	}
	for (int i = 0; i < HOGS; i++) {
		struct client_extent e = ext[i];
		for (int k = 0; k < HOG_REQS; k++) {
			reqs[i][k] = (struct client_req){ .op = SPILL_OP_READ, .extent = e.id,
							  .page = 0, .npages = HOG_PAGES,
							  .buf = sink };
			assert_int_equal(client_submit(bad[i], &reqs[i][k]), 0);
		}
		assert_int_equal(client_flush(bad[i]), 0);
	}
	assert_true(raw_wait_metric(&server, "spillway_output_waits_total", 1) >= 1);
	/* A newcomer, well inside the hogs' write-stall allowance. */
	struct client_opts o = { .name = "newcomer", .timeout_ms = 20000 };
	struct client *c = NULL;
	char err[256] = "";
	int rc = client_connect(server.url, &o, &c, err, sizeof(err));
	print_message("newcomer connect: %d %s; handshake timeouts %lld\n", rc, err,
		      srv_metric(&server, "spillway_connection_timeouts_total{kind=\"handshake\"}"));
	assert_int_equal(rc, 0);
	assert_int_equal(client_ping(c), 0);
	client_close(c);
	for (int i = 0; i < HOGS; i++)
		client_close(bad[i]);
	assert_int_equal(srv_stop(&server), 0);
}

/* --- control frames after authentication ------------------------------ */

#define BIG_CTRL_CONNS 48
#define BIG_CTRL_RSS_MAX_KIB (16 * 1024)

/* A raw Hello, with blocking sends; 0 once the HelloReply header arrived. */
static int raw_hello(int fd)
{
	uint8_t nonce[32] = { 1 };
	Spillway__Hello hello = SPILLWAY__HELLO__INIT;
	hello.version = SPILL_WIRE_VERSION;
	hello.client_nonce.data = nonce;
	hello.client_nonce.len = sizeof(nonce);
	Spillway__Ctrl m = SPILLWAY__CTRL__INIT;
	m.msg_case = SPILLWAY__CTRL__MSG_HELLO;
	m.hello = &hello;
	uint8_t buf[256];
	int len = ctrl_pack(&m, buf, sizeof(buf));
	if (len <= 0)
		return -1;
	struct frame_hdr h = { .op = SPILL_OP_CTRL, .req_id = 1, .payload_len = (uint32_t)len };
	struct spill_wire_hdr w;
	struct iovec iov = { buf, (size_t)len };
	frame_hdr_pack(&h, &w);
	frame_seal(&w, &iov, 1);
	if (send(fd, &w, sizeof(w), MSG_NOSIGNAL) != (ssize_t)sizeof(w) ||
	    send(fd, buf, (size_t)len, MSG_NOSIGNAL) != len)
		return -1;
	struct pollfd p = { .fd = fd, .events = POLLIN };
	return poll(&p, 1, RAW_BOUND_MS) == 1 ? 0 : -1;
}

/* With no key, Hello authenticates. Each connection then announces a 1 MiB
 * control frame and sends all of it but its last byte; a byte every few
 * minutes would keep the idle clock fresh, and a registered connection has
 * none. Each holds a 1 MiB payload buffer: --max-connections (1024 by
 * default) x 1 MiB is resident, which a 1 GiB server does not survive. The
 * total of payload buffers must be bounded. */
static void big_ctrl_frames_after_auth_stay_bounded(void **state)
{
	(void)state;
	SKIP_OPEN_FINDING(); /* FINDING (not fixed): conn.c start_frame reallocs up to
		 * SPILL_MAX_CTRL_PAYLOAD per connection with no server-wide
		 * budget and no deadline for finishing a frame. */
	assert_int_equal(srv_start(&server, "--capacity", "16M", "--workers", "1", NULL), 0);
	long base = raw_vmrss_kib(server.pid);
	static uint8_t junk[SPILL_MAX_CTRL_PAYLOAD];
	memset(junk, 0x5a, sizeof(junk));
	int fds[BIG_CTRL_CONNS];
	for (int i = 0; i < BIG_CTRL_CONNS; i++) {
		fds[i] = raw_dial_from(server.port, "127.0.0.1");
		assert_true(fds[i] >= 0);
		fcntl(fds[i], F_SETFL, fcntl(fds[i], F_GETFL) & ~O_NONBLOCK);
		assert_int_equal(raw_hello(fds[i]), 0);
		raw_send_header(fds[i], SPILL_OP_CTRL, SPILL_MAX_CTRL_PAYLOAD, 0);
		assert_int_equal(send(fds[i], junk, sizeof(junk) - 1, MSG_NOSIGNAL),
				 (ssize_t)sizeof(junk) - 1);
	}
	long peak = base;
	uint64_t until = raw_now_ms() + 3000;
	while (raw_now_ms() < until) {
		long v = raw_vmrss_kib(server.pid);
		if (v > peak)
			peak = v;
		poll(NULL, 0, 100);
	}
	print_message("RSS %ld -> %ld KiB with %d partial 1 MiB control frames\n", base, peak,
		      BIG_CTRL_CONNS);
	for (int i = 0; i < BIG_CTRL_CONNS; i++)
		close(fds[i]);
	assert_int_equal(srv_stop(&server), 0);
	assert_true(peak - base < BIG_CTRL_RSS_MAX_KIB);
}

/* --- the unauthenticated cap against one address ---------------------- */

#define SILENT 128 /* the default --max-unauthenticated and per-address cap */

/* One address opens 128 connections and never authenticates: only
 * --max-unauthenticated-per-peer (64 by default) of them are admitted, the rest are
 * closed at accept, and a client from another address authenticates and is
 * served while they stay. */
static void one_address_cannot_fill_the_unauthenticated_cap(void **state)
{
	(void)state;
	srv_write_psk(&server, "review-key-0123456789abcdef");
	assert_int_equal(srv_start(&server, "--capacity", "16M", "--psk-file", server.psk_path,
				   NULL), 0);
	struct auth_psk psk;
	assert_int_equal(auth_psk_load(server.psk_path, &psk), 0);
	int fds[SILENT];
	for (int i = 0; i < SILENT; i++)
		assert_true((fds[i] = raw_dial_from(server.port, "127.0.0.2")) >= 0);
	const char *refusals =
		"spillway_connections_refused_total{reason=\"unauthenticated_per_peer\"}";
	assert_int_equal(raw_wait_metric(&server, refusals, SILENT - 64), SILENT - 64);
	assert_int_equal(srv_metric(&server, "spillway_connections_unauthenticated"), 64);
	struct client *legit = connect_as(&server, "legit", &psk);
	assert_int_equal(client_ping(legit), 0);
	client_close(legit);
	for (int i = 0; i < SILENT; i++)
		close(fds[i]);
	assert_int_equal(srv_stop(&server), 0);
	unlink(server.psk_path);
}

/* --- the admin socket meets admission ------------------------------------ */

static int unix_dial(const char *url)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	const char *path = url + strlen("unix://");
	assert_true(strlen(path) < sizeof(a.sun_path));
	memcpy(a.sun_path, path, strlen(path) + 1);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	return fd;
}

/* Connections on the admin socket count per uid: past the per-peer cap the
 * newcomer is closed at once. They do not meet the total cap, so an operator
 * still gets in when network peers hold every place. */
static void admin_socket_connections_are_capped_per_uid(void **state)
{
	(void)state;
	assert_int_equal(srv_start(&server, "--capacity", "16M", "--max-connections", "4",
				   "--max-connections-per-peer", "4", NULL), 0);
	int tcp[4], local[5];
	for (int i = 0; i < 4; i++)
		assert_true((tcp[i] = raw_dial_from(server.port, "127.0.0.2")) >= 0);
	assert_int_equal(raw_wait_metric(&server, "spillway_connections_admitted", 4), 4);
	for (int i = 0; i < 5; i++)
		local[i] = unix_dial(server.admin_url);
	assert_int_equal(raw_wait_closed(local[4]), 0);
	assert_int_equal(raw_wait_metric(&server,
					 "spillway_connections_refused_total{reason=\"per_peer\"}", 1),
			 1);
	assert_false(raw_closed(local[0]));
	for (int i = 0; i < 5; i++)
		close(local[i]);
	for (int i = 0; i < 4; i++)
		close(tcp[i]);
	struct client *op = NULL;
	char err[256] = "";
	struct client_opts o = { .timeout_ms = 20000 };
	assert_int_equal(raw_wait_metric_is(&server, "spillway_connections_admitted", 0, 1), 0);
	assert_int_equal(client_connect(server.admin_url, &o, &op, err, sizeof(err)), 0);
	client_close(op);
	assert_int_equal(srv_stop(&server), 0);
}

/* --- the metrics endpoint ---------------------------------------------- */

#define HEADER_FLOOD (64u << 20)

/* Anyone who reaches the metrics port (no key there) sends one request
 * whose header never ends. Its memory must stay bounded: evhttp's default
 * header limit is none, and its read timeout restarts with every byte. */
static void metrics_request_header_is_bounded(void **state)
{
	(void)state;
	assert_int_equal(srv_start(&server, "--capacity", "16M", NULL), 0);
	long base = raw_vmrss_kib(server.pid);
	int fd = raw_dial_from(server.metrics_port, "127.0.0.1");
	assert_true(fd >= 0);
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	struct timeval tv = { 20, 0 }; /* only there to fail instead of hanging */
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	static char line[64 * 1024];
	memset(line, 'a', sizeof(line));
	memcpy(line, "X-Pad: ", 7);
	memcpy(line + sizeof(line) - 2, "\r\n", 2);
	const char *start = "GET /metrics HTTP/1.1\r\nHost: x\r\n";
	ssize_t n = send(fd, start, strlen(start), MSG_NOSIGNAL);
	size_t sent = 0;
	while (n > 0 && sent < HEADER_FLOOD) {
		n = send(fd, line, sizeof(line), MSG_NOSIGNAL);
		if (n > 0)
			sent += (size_t)n;
	}
	long peak = raw_vmrss_kib(server.pid);
	print_message("metrics: %zu header bytes accepted; RSS %ld -> %ld KiB\n", sent, base, peak);
	close(fd);
	assert_int_equal(srv_stop(&server), 0);
	/* Refused early: the server closed, or at least kept little of it. */
	assert_true(sent < HEADER_FLOOD || peak - base < 8 * 1024);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(output_hog_does_not_block_newcomers_handshake),
		cmocka_unit_test(big_ctrl_frames_after_auth_stay_bounded),
		cmocka_unit_test(one_address_cannot_fill_the_unauthenticated_cap),
		cmocka_unit_test(metrics_request_header_is_bounded),
		cmocka_unit_test(admin_socket_connections_are_capped_per_uid),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
