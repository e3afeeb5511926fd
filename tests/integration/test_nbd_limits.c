/* SPDX-License-Identifier: MIT */
/*
 * NBD limits against a real spillwayd: what one peer can take from others.
 * Connections over --nbd-max-connections are closed at once and counted; a
 * flood of negotiated connections that never send a request is closed by
 * the idle timeout and a legitimate client then reads correct bytes; a
 * negotiation that never ends (silent, or busy with options) is closed at
 * the handshake deadline; 32 MiB READs leave no memory behind; a request
 * over the advertised maximum gets EINVAL and nobody else notices; with one
 * transfer buffer held by a stalled WRITE, another request waits and gets
 * either its bytes or ENOMEM, never wrong data. The limits are config keys
 * too, and out-of-range values are usage errors. Waits are for events (EOF,
 * a metric), bounded only so a failure does not hang.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "harness.h"
#include "nbd_raw.h"
#include "nbd_util.h"
#include "srv_raw.h"

#define MAX_REQ (32u << 20)
#define BOUND_S 20

static time_t bound(void)
{
	return time(NULL) + BOUND_S;
}

/* A connection from a chosen loopback source address (a second peer). */
static int dial_from(int port, const char *src)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET };
	inet_pton(AF_INET, src, &a.sin_addr);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	a.sin_port = htons((uint16_t)port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	struct timeval tv = { BOUND_S, 0 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	return fd;
}

/* Greeting, fixed newstyle flags and GO for "d", from src. */
static int negotiate_from(int port, const char *src)
{
	int fd = dial_from(port, src);
	uint8_t h[18], f[4];
	assert_int_equal(recvall(fd, h, sizeof(h)), 0);
	put32(f, 3);
	sendall(fd, f, 4);
	go(fd, "d");
	return fd;
}

/* Wait for a metric to reach at least want (exact: to be want). */
static void wait_metric_cmp(const struct srv *s, const char *series, long long want, int exact)
{
	time_t until = bound();
	long long v;
	while (((v = srv_metric(s, series)) < want || (exact && v != want)) && time(NULL) < until) {
		struct pollfd none = { -1, 0, 0 };
		poll(&none, 0, 20); /* pacing of the bounded wait, not synchronisation */
	}
	if (v < want || (exact && v != want))
		fail_msg("%s is %lld, expected %s%lld", series, v, exact ? "" : "at least ", want);
}

static void wait_metric(const struct srv *s, const char *series, long long want)
{
	wait_metric_cmp(s, series, want, 0);
}

static uint8_t pattern_byte(uint64_t off)
{
	return (uint8_t)(off * 7 + (off >> 12) * 13 + 1);
}

static void fill(uint8_t *b, uint64_t off, size_t n)
{
	for (size_t i = 0; i < n; i++)
		b[i] = pattern_byte(off + i);
}

static void write_pattern(int fd, uint64_t off, uint32_t len)
{
	uint8_t *b = malloc(len);
	fill(b, off, len);
	request(fd, 0, 1, 7, off, len);
	sendall(fd, b, len);
	free(b);
	assert_int_equal(reply(fd, 7, NULL, 0), 0);
}

/* READ off+len and compare with the pattern. */
static void read_check(int fd, uint64_t handle, uint64_t off, uint32_t len)
{
	uint8_t *b = malloc(len), *want = malloc(len);
	request(fd, 0, 0, handle, off, len);
	assert_int_equal(reply(fd, handle, b, len), 0);
	fill(want, off, len);
	assert_memory_equal(b, want, len);
	free(b);
	free(want);
}

static void start(struct srv *s, const char *capacity, const char *size, ...)
{
	const char *a[8] = { NULL };
	va_list ap;
	va_start(ap, size);
	for (int i = 0; i < 7 && (a[i] = va_arg(ap, const char *)); i++)
		;
	va_end(ap);
	assert_int_equal(srv_start(s, "--capacity", capacity, "--nbd", "127.0.0.1:0", "--grace",
				   "0", a[0], a[1], a[2], a[3], a[4], a[5], a[6], NULL), 0);
	assert_true(nbd_port_of(s) > 0);
	char out[4096];
	assert_int_equal(run_capture(out, sizeof(out), SPILLCTL_PATH, "--server", s->admin_url,
				     "export", "create", "d", "--size", size, NULL),
			 0);
}

/* Over --nbd-max-connections: the newcomer is closed at once and counted;
 * the connections already open are served as before, and a place that
 * frees up is taken by the next client. */
static void connections_over_the_cap_are_closed_at_once(void **state)
{
	(void)state;
	struct srv s = { 0 };
	/* The config-file keys, this time. */
	srv_write_config(&s, "nbd-max-connections = 8\nnbd-idle-timeout = 0\n");
	start(&s, "32M", "8M", "--config", s.config_path, NULL);
	int port = nbd_port_of(&s), fd[8];
	for (int i = 0; i < 8; i++)
		fd[i] = negotiate_from(port, "127.0.0.2");
	for (int i = 0; i < 3; i++) {
		int extra = dial_from(port, "127.0.0.2");
		assert_true(closed(extra));
		close(extra);
	}
	wait_metric(&s, "spillway_nbd_refused_total", 3);
	write_pattern(fd[0], 0, 65536);
	read_check(fd[7], 1, 0, 65536);
	close(fd[3]);
	wait_metric_cmp(&s, "spillway_nbd_connections", 7, 1);
	int legit = negotiate_from(port, "127.0.0.1");
	read_check(legit, 2, 0, 65536);
	close(legit);
	for (int i = 0; i < 8; i++)
		if (i != 3)
			close(fd[i]);
	assert_true(srv_log_has(&s, "--nbd-max-connections"));
	assert_int_equal(srv_stop(&s), 0);
	unlink(s.config_path);
}

/* Out-of-range limits are usage errors (exit 2), naming the flag. */
static void bad_limits_are_usage_errors(void **state)
{
	(void)state;
	static const char *const bad[][2] = {
		{ "--nbd-max-connections", "0" }, { "--nbd-handshake-timeout", "0" },
		{ "--nbd-stall-timeout", "x" }, { "--nbd-idle-timeout", "-1" },
		{ "--nbd-attached-idle-timeout", "99999999" }, { "--nbd-buffer-memory", "64K" },
	};
	char out[1024];
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(run_capture(out, sizeof(out), SPILLWAYD_PATH, bad[i][0], bad[i][1],
					     NULL), 2);
		assert_non_null(strstr(run_stderr, bad[i][0]));
	}
}

/* 256 idle connections from one address: the per-address cap lets 64 in and
 * closes the rest at once; a client from another address is served beside
 * them; the idle timeout then closes the 64. */
static void an_idle_flood_is_closed_and_a_client_gets_in(void **state)
{
	(void)state;
	struct srv s = { 0 };
	start(&s, "32M", "8M", "--nbd-idle-timeout", "3", "--max-connections-per-peer", "64",
	      NULL);
	int port = nbd_port_of(&s);
	int writer = negotiate_from(port, "127.0.0.1");
	write_pattern(writer, 4096, 131072);
	close(writer);
	wait_metric_cmp(&s, "spillway_nbd_connections", 0, 1); /* its place is free */
	int fd[256];
	for (int i = 0; i < 64; i++)
		fd[i] = negotiate_from(port, "127.0.0.2");
	for (int i = 64; i < 256; i++) {
		fd[i] = dial_from(port, "127.0.0.2");
		assert_true(closed(fd[i]));
		close(fd[i]);
	}
	wait_metric(&s, "spillway_connections_refused_total{reason=\"per_peer\"}", 192);
	int legit = negotiate_from(port, "127.0.0.1");
	read_check(legit, 1, 4096, 131072);
	close(legit);
	for (int i = 0; i < 64; i++) {
		assert_true(closed(fd[i]));
		close(fd[i]);
	}
	wait_metric(&s, "spillway_nbd_timeouts_total{reason=\"idle_timeout\"}", 64);
	assert_int_equal(srv_stop(&s), 0);
}

/* Send NBD_OPT_LIST and read its replies until the server closes; 1 if it
 * closed before the bound. */
static int list_until_closed(int fd)
{
	time_t until = bound();
	uint8_t h[16], r[512];
	put64(h, IHAVEOPT);
	put32(h + 8, 3);
	put32(h + 12, 0);
	while (time(NULL) < until) {
		if (send(fd, h, sizeof(h), MSG_NOSIGNAL) != (ssize_t)sizeof(h))
			return 1;
		/* Replies: one SERVER record, then ACK (type 1). */
		for (;;) {
			uint8_t rh[20];
			if (recvall(fd, rh, sizeof(rh)))
				return 1;
			uint32_t len = get32(rh + 16);
			if (len > sizeof(r) || (len && recvall(fd, r, len)))
				return 1;
			if (get32(rh + 12) == 1)
				break;
		}
	}
	return 0;
}

/* The handshake is a deadline, not a per-read timeout: a client that says
 * nothing, one that stops inside its flags, and one that keeps the
 * negotiation busy with valid options forever are all closed. */
static void a_negotiation_that_never_ends_is_closed(void **state)
{
	(void)state;
	struct srv s = { 0 };
	start(&s, "32M", "8M", "--nbd-handshake-timeout", "1", NULL);
	int port = nbd_port_of(&s);
	int silent = dial(port);
	int partial = dial(port);
	sendall(partial, "\0\0", 2);
	int busy = greet(port, 3);
	assert_true(list_until_closed(busy));
	assert_true(closed(silent));
	assert_true(closed(partial));
	close(busy);
	close(silent);
	close(partial);
	wait_metric(&s, "spillway_nbd_timeouts_total{reason=\"handshake_timeout\"}", 3);
	/* A client that negotiates in time is not affected. */
	int ok = greet(port, 3);
	assert_int_equal(go(ok, "d"), 8u << 20);
	request(ok, 0, 3, 1, 0, 0);
	assert_int_equal(reply(ok, 1, NULL, 0), 0);
	close(ok);
	assert_int_equal(srv_stop(&s), 0);
}

/* 16 connections each READ 32 MiB (the advertised maximum) and stay open:
 * the bytes are right and the server's resident memory comes back to within
 * a few MiB of where it was (no buffer follows the largest request). */
static void big_reads_leave_no_memory_behind(void **state)
{
	(void)state;
	struct srv s = { 0 };
	start(&s, "64M", "32M", NULL);
	int port = nbd_port_of(&s), fd[16];
	int writer = negotiate_from(port, "127.0.0.1");
	write_pattern(writer, 0, MAX_REQ);
	close(writer);
	for (int i = 0; i < 16; i++)
		fd[i] = negotiate_from(port, "127.0.0.1");
	long before = raw_vmrss_kib(s.pid);
	assert_true(before > 0);
	for (int i = 0; i < 16; i++)
		read_check(fd[i], 10 + (uint64_t)i, 0, MAX_REQ);
	/* A FLUSH answered means the READ before it is finished on the server. */
	for (int i = 0; i < 16; i++) {
		request(fd[i], 0, 3, 100, 0, 0);
		assert_int_equal(reply(fd[i], 100, NULL, 0), 0);
	}
	long after = raw_vmrss_kib(s.pid);
	assert_true(before > 0);
	print_message("VmRSS %ld KiB before, %ld KiB after 16 x 32 MiB READs\n", before, after);
	assert_true(after < before + 8 * 1024);
	assert_int_equal(srv_metric(&s, "spillway_nbd_buffer_bytes"), 0);
	for (int i = 0; i < 16; i++)
		close(fd[i]);
	assert_int_equal(srv_stop(&s), 0);
}

/* NBD_OPT_GO with an NBD_INFO_BLOCK_SIZE request: the advertised maximum. */
static uint32_t advertised_max(int fd)
{
	uint8_t d[16] = { 0, 0, 0, 1, 'd', 0, 1, 0, 3 }, r[256];
	send_opt(fd, 7, d, 9);
	uint32_t type, len, max = 0;
	while ((type = opt_reply(fd, 7, r, sizeof(r), &len)) == 3)
		if (r[0] == 0 && r[1] == 3 && len == 14)
			max = get32(r + 10);
	assert_int_equal(type, 1);
	return max;
}

/* A request over the advertised maximum gets EINVAL (a WRITE's payload is
 * drained first) and its connection goes on; another connection sees
 * nothing of it. The maximum itself works, even with the smallest buffer
 * budget. */
static void a_request_over_the_maximum_gets_einval(void **state)
{
	(void)state;
	struct srv s = { 0 };
	start(&s, "128M", "64M", "--nbd-buffer-memory", "256K", NULL);
	int port = nbd_port_of(&s);
	int fd = greet(port, 3);
	assert_int_equal(advertised_max(fd), MAX_REQ);
	int other = negotiate_from(port, "127.0.0.1");
	write_pattern(other, 4096, MAX_REQ);
	request(fd, 0, 0, 1, 0, MAX_REQ + 1);
	assert_int_equal(reply(fd, 1, NULL, 0), 22);
	request(fd, 0, 0, 2, 0, UINT32_MAX);
	assert_int_equal(reply(fd, 2, NULL, 0), 22);
	uint8_t *junk = calloc(1, MAX_REQ + 4096);
	request(fd, 0, 1, 3, 0, MAX_REQ + 4096);
	sendall(fd, junk, MAX_REQ + 4096);
	free(junk);
	assert_int_equal(reply(fd, 3, NULL, 0), 22);
	read_check(fd, 4, 4096, MAX_REQ);
	read_check(other, 5, 4096, 65536);
	close(fd);
	close(other);
	assert_int_equal(srv_stop(&s), 0);
}

/* One transfer buffer in all (--nbd-buffer-memory 256K), held by a WRITE
 * whose payload stops: the WRITE's connection is closed at the stall
 * timeout, a READ on another connection waits meanwhile and gets either the
 * right bytes or ENOMEM, never wrong bytes, and the next READ succeeds. */
static void a_stalled_write_holds_a_buffer_only_until_the_stall_timeout(void **state)
{
	(void)state;
	struct srv s = { 0 };
	start(&s, "32M", "8M", "--nbd-buffer-memory", "256K", "--nbd-stall-timeout", "1", NULL);
	int port = nbd_port_of(&s);
	int other = negotiate_from(port, "127.0.0.1");
	write_pattern(other, 0, 65536);
	int staller = negotiate_from(port, "127.0.0.1");
	request(staller, 0, 1, 1, 0, 524288);
	sendall(staller, "x", 1);
	wait_metric(&s, "spillway_nbd_buffer_bytes", 256 * 1024);
	uint8_t b[65536], want[65536];
	fill(want, 0, sizeof(want));
	request(other, 0, 0, 2, 0, sizeof(b));
	uint32_t err = reply(other, 2, b, sizeof(b));
	assert_true(err == 0 || err == 12);
	if (!err)
		assert_memory_equal(b, want, sizeof(b));
	assert_true(closed(staller));
	close(staller);
	wait_metric(&s, "spillway_nbd_timeouts_total{reason=\"stall_timeout\"}", 1);
	assert_true(srv_metric(&s, "spillway_nbd_buffer_waits_total") >= 1);
	read_check(other, 3, 0, 65536);
	close(other);
	assert_int_equal(srv_stop(&s), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(connections_over_the_cap_are_closed_at_once),
		cmocka_unit_test(an_idle_flood_is_closed_and_a_client_gets_in),
		cmocka_unit_test(a_negotiation_that_never_ends_is_closed),
		cmocka_unit_test(big_reads_leave_no_memory_behind),
		cmocka_unit_test(a_request_over_the_maximum_gets_einval),
		cmocka_unit_test(a_stalled_write_holds_a_buffer_only_until_the_stall_timeout),
		cmocka_unit_test(bad_limits_are_usage_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
