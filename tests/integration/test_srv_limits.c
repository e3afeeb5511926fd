/* SPDX-License-Identifier: MIT */
/*
 * Connection limits of spillwayd (admission.c, conn.c), each against a real
 * server with small limits set by its flags: descriptors running out, large
 * frames before authentication, the handshake and idle timeouts, the
 * per-address cap, queued output of clients that never read, and the
 * metrics endpoint's own cap.
 */
#include <pthread.h>
#include <stdatomic.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "srv_raw.h"

static struct srv server;

static void start(const char *a1, const char *a2, const char *a3, const char *a4,
		  const char *a5, const char *a6)
{
	assert_int_equal(srv_start(&server, "--capacity", "64M", a1, a2, a3, a4, a5, a6, NULL), 0);
}

static void stop(void)
{
	assert_int_equal(srv_stop(&server), 0);
}

/* --- (a) descriptors run out ------------------------------------------- */

#define IDLE_CONNS 70

/* Under RLIMIT_NOFILE 64, 70 silent connections: the server backs off
 * instead of spinning, logs it at most once per interval, and a real client
 * is served once the handshake timeout has cleared the silent ones. */
static void out_of_descriptors_backs_off_and_serves(void **state)
{
	(void)state;
	srv_nofile_limit = 64;
	/* Descriptors, not the per-address cap, must be what runs out. */
	start("--handshake-timeout", "2", "--workers", "1", "--max-unauthenticated-per-peer",
	      "128");
	srv_nofile_limit = 0;
	int fds[IDLE_CONNS];
	for (int i = 0; i < IDLE_CONNS; i++)
		assert_true((fds[i] = raw_dial_from(server.port, "127.0.0.1")) >= 0);
	assert_true(raw_wait_metric(&server, "spillway_accept_backoffs_total", 1) >= 1);
	struct client *c = connect_as(&server, "legit", NULL);
	assert_int_equal(client_ping(c), 0);
	client_close(c);
	/* Those admitted were closed for silence; the rest waited in the backlog. */
	assert_true(srv_metric(&server, "spillway_connection_timeouts_total{kind=\"handshake\"}") >= 1);
	for (int i = 0; i < IDLE_CONNS; i++)
		close(fds[i]);
	/* At most one line per 10 s interval; the test ran well under a minute. */
	long lines = raw_log_count(&server, "accept");
	print_message("accept back-offs %lld, log lines about accept %ld\n",
		      srv_metric(&server, "spillway_accept_backoffs_total"), lines);
	assert_true(lines >= 1 && lines <= 6);
	stop();
}

/* --- (b) large frames before authentication ----------------------------- */

#define FLOOD_CONNS 40

static void large_frame_before_auth_is_closed_at_the_header(void **state)
{
	(void)state;
	start(NULL, NULL, NULL, NULL, NULL, NULL);
	long before = raw_vmrss_kib(server.pid);
	static uint8_t junk[1 << 20];
	memset(junk, 0xa5, sizeof(junk));
	int fds[FLOOD_CONNS];
	for (int i = 0; i < FLOOD_CONNS; i++) {
		assert_true((fds[i] = raw_dial_from(server.port, "127.0.0.1")) >= 0);
		raw_send_header(fds[i], SPILL_OP_WRITE, SPILL_MAX_BATCH_PAGES * SPILL_PAGE_SIZE,
				SPILL_MAX_BATCH_PAGES);
		/* Half the announced payload, as far as the socket takes it. */
		(void)send(fds[i], junk, sizeof(junk), MSG_NOSIGNAL | MSG_DONTWAIT);
	}
	long peak = raw_vmrss_kib(server.pid);
	for (int i = 0; i < FLOOD_CONNS; i++) {
		assert_int_equal(raw_wait_closed(fds[i]), 0);
		close(fds[i]);
	}
	long after = raw_vmrss_kib(server.pid);
	print_message("VmRSS %ld KiB before, %ld while flooded, %ld after\n", before, peak, after);
	assert_true(peak - before < 4096);
	assert_true(after - before < 4096);
	assert_true(srv_metric(&server, "spillway_errors_total{kind=\"auth\"}") >= FLOOD_CONNS);
	/* Still serving. */
	struct client *c = connect_as(&server, "after-flood", NULL);
	assert_int_equal(client_ping(c), 0);
	client_close(c);
	stop();
}

/* --- (c) handshake and idle timeouts ------------------------------------ */

static void silent_connection_is_closed_by_the_handshake_timeout(void **state)
{
	(void)state;
	start("--handshake-timeout", "1", NULL, NULL, NULL, NULL);
	struct client *c = connect_as(&server, "stays", NULL);
	int fd = raw_dial_from(server.port, "127.0.0.1");
	assert_true(fd >= 0);
	assert_int_equal(raw_wait_closed(fd), 0);
	close(fd);
	assert_int_equal(srv_metric(&server, "spillway_connection_timeouts_total{kind=\"handshake\"}"), 1);
	assert_int_equal(srv_metric(&server, "spillway_connections_unauthenticated"), 0);
	/* An authenticated connection older than the timeout is untouched. */
	assert_int_equal(client_ping(c), 0);
	client_close(c);
	stop();
}

static void idle_timeout_spares_registered_connections(void **state)
{
	(void)state;
	start("--idle-timeout", "1", NULL, NULL, NULL, NULL);
	struct client *registered = connect_as(&server, "pager", NULL);
	struct client *session = connect_as(&server, NULL, NULL); /* operator, no identity */
	assert_true(raw_wait_metric(&server, "spillway_connection_timeouts_total{kind=\"idle\"}", 1) >= 1);
	assert_int_equal(client_ping(registered), 0);
	assert_int_not_equal(client_ping(session), 0);
	client_close(session);
	client_close(registered);
	stop();
}

static void idle_timeout_all_closes_registered_ones_too(void **state)
{
	(void)state;
	start("--idle-timeout", "1", "--idle-timeout-all", NULL, NULL, NULL);
	struct client *registered = connect_as(&server, "quiet", NULL);
	assert_true(raw_wait_metric(&server, "spillway_connection_timeouts_total{kind=\"idle\"}", 1) >= 1);
	assert_int_not_equal(client_ping(registered), 0);
	client_close(registered);
	stop();
}

/* --- (d) connections per peer address ------------------------------------ */

#define PER_PEER 4

static void per_peer_cap_refuses_only_that_address(void **state)
{
	(void)state;
	srv_write_config(&server, "max-connections-per-peer = 4\n"); /* the config key */
	start("--config", server.config_path, NULL, NULL, NULL, NULL);
	int fds[PER_PEER];
	for (int i = 0; i < PER_PEER; i++)
		assert_true((fds[i] = raw_dial_from(server.port, "127.0.0.2")) >= 0);
	assert_true(raw_wait_metric(&server, "spillway_connections_unauthenticated", PER_PEER) >= PER_PEER);
	int extra = raw_dial_from(server.port, "127.0.0.2");
	assert_true(extra >= 0);
	assert_int_equal(raw_wait_closed(extra), 0);
	close(extra);
	assert_int_equal(srv_metric(&server, "spillway_connections_refused_total{reason=\"per_peer\"}"), 1);
	struct client *c = connect_as(&server, "other-address", NULL);
	assert_int_equal(client_ping(c), 0);
	client_close(c);
	for (int i = 0; i < PER_PEER; i++) {
		assert_false(raw_closed(fds[i])); /* the admitted ones stay */
		close(fds[i]);
	}
	stop();
}

/* The unauthenticated cap, then the total: both refuse at accept, and an
 * authenticated connection frees its unauthenticated place. */
static void unauthenticated_and_total_caps_refuse_at_accept(void **state)
{
	(void)state;
	start("--max-unauthenticated", "2", "--max-connections", "4", NULL, NULL);
	struct client *c = connect_as(&server, "first", NULL);
	int fds[3];
	for (int i = 0; i < 2; i++)
		assert_true((fds[i] = raw_dial_from(server.port, "127.0.0.3")) >= 0);
	assert_true(raw_wait_metric(&server, "spillway_connections_unauthenticated", 2) == 2);
	int extra = raw_dial_from(server.port, "127.0.0.4");
	assert_true(extra >= 0);
	assert_int_equal(raw_wait_closed(extra), 0);
	close(extra);
	assert_int_equal(srv_metric(&server, "spillway_connections_refused_total{reason=\"unauthenticated\"}"), 1);
	/* Three admitted; one more authenticated client makes four. */
	close(fds[0]); /* it leaves when its worker sees the EOF */
	assert_int_equal(raw_wait_metric_is(&server, "spillway_connections_admitted", 2, 1), 2);
	struct client *d = connect_as(&server, "second", NULL);
	assert_true((fds[2] = raw_dial_from(server.port, "127.0.0.5")) >= 0);
	assert_true(raw_wait_metric(&server, "spillway_connections_admitted", 4) == 4);
	extra = raw_dial_from(server.port, "127.0.0.6");
	assert_true(extra >= 0);
	assert_int_equal(raw_wait_closed(extra), 0);
	close(extra);
	assert_int_equal(srv_metric(&server, "spillway_connections_refused_total{reason=\"total\"}"), 1);
	assert_int_equal(client_ping(c), 0);
	assert_int_equal(client_ping(d), 0);
	close(fds[1]);
	close(fds[2]);
	client_close(d);
	client_close(c);
	stop();
}

/* --- (e) clients that never read their replies ------------------------ */

#define NONREADERS 8
#define NONREADER_REQS 1024
#define READ_PAGES 8 /* 32 KiB replies: copied, not sent from the extent */
#define OUTPUT_MAX (16ll << 20)

static atomic_int sampling;
static atomic_llong max_queued;

static void *sample_queued(void *arg)
{
	(void)arg;
	while (atomic_load(&sampling)) {
		long long v = srv_metric(&server, "spillway_output_queued_bytes");
		if (v > atomic_load(&max_queued))
			atomic_store(&max_queued, v);
	}
	return NULL;
}

static void output_of_nonreaders_stays_under_the_cap(void **state)
{
	(void)state;
	start("--conn-output-max", "4M", "--output-max", "16M", "--write-stall-timeout", "3");
	atomic_store(&sampling, 1);
	atomic_store(&max_queued, 0);
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, sample_queued, NULL), 0);
	struct client *bad[NONREADERS];
	static struct client_req reqs[NONREADERS][NONREADER_REQS];
	static uint8_t sink[READ_PAGES * SPILL_PAGE_SIZE];
	for (int i = 0; i < NONREADERS; i++) {
		char name[32];
		snprintf(name, sizeof(name), "nonreader-%d", i);
		bad[i] = connect_as(&server, name, NULL); /* window: the server's 1024 */
		struct client_extent e;
		assert_int_equal(client_alloc_extents(bad[i], 1, -1, &e), 0);
		for (int k = 0; k < NONREADER_REQS; k++) {
			reqs[i][k] = (struct client_req){ .op = SPILL_OP_READ, .extent = e.id,
							  .page = 0, .npages = READ_PAGES,
							  .buf = sink };
			assert_int_equal(client_submit(bad[i], &reqs[i][k]), 0);
		}
		assert_int_equal(client_flush(bad[i]), 0);
	}
	/* The cap is reached and holds; a stalled reader is cut off, and then
	 * another client is served. */
	assert_true(raw_wait_metric(&server, "spillway_output_waits_total", 1) >= 1);
	assert_true(raw_wait_metric(&server, "spillway_connection_timeouts_total{kind=\"write_stall\"}", 1) >= 1);
	struct client *good = connect_as(&server, "reader", NULL);
	assert_int_equal(client_ping(good), 0);
	client_close(good);
	atomic_store(&sampling, 0);
	pthread_join(th, NULL);
	print_message("largest queued output seen: %lld bytes\n", atomic_load(&max_queued));
	assert_true(atomic_load(&max_queued) > 0);
	assert_true(atomic_load(&max_queued) <= OUTPUT_MAX);
	for (int i = 0; i < NONREADERS; i++)
		client_close(bad[i]);
	stop();
}

/* --- (e) the metrics endpoint ------------------------------------------ */

/* The reply's status line on fd, read until the server closes ("" if it
 * closed without one). */
static void metrics_status(int fd, char *line, size_t cap)
{
	size_t len = 0;
	ssize_t n;
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	while (len + 1 < cap && (n = recv(fd, line + len, cap - 1 - len, 0)) > 0)
		len += (size_t)n;
	line[len] = '\0';
	line[strcspn(line, "\r\n")] = '\0';
}

/* Idle connections to /metrics cannot take more than their cap, each one
 * past it is closed at once, and the endpoint serves again once they go;
 * a request head that never ends is refused at its size bound. With a
 * 60 s timeout, only the cap can close a connection within the test's
 * bound. */
static void metrics_endpoint_caps_its_connections(void **state)
{
	(void)state;
	start("--metrics-max-connections", "3", "--handshake-timeout", "60", NULL, NULL);
	int idle[3];
	for (int i = 0; i < 3; i++)
		assert_true((idle[i] = raw_dial_from(server.metrics_port, "127.0.0.1")) >= 0);
	int over = raw_dial_from(server.metrics_port, "127.0.0.1");
	assert_true(over >= 0);
	assert_int_equal(raw_wait_closed(over), 0);
	close(over);
	for (int i = 0; i < 3; i++)
		assert_false(raw_closed(idle[i]));
	/* A head sent in pieces is answered... */
	const char *a = "GET /heal", *b = "thz HTTP/1.0\r\nHost: x\r\n\r\n";
	char line[256];
	assert_int_equal(send(idle[0], a, strlen(a), MSG_NOSIGNAL), (ssize_t)strlen(a));
	assert_int_equal(send(idle[0], b, strlen(b), MSG_NOSIGNAL), (ssize_t)strlen(b));
	metrics_status(idle[0], line, sizeof(line));
	assert_string_equal(line, "HTTP/1.1 200 OK");
	/* ...one that outgrows the bound is refused, not buffered. */
	static char head[20 * 1024];
	memset(head, 'a', sizeof(head));
	memcpy(head, "GET /metrics HTTP/1.1\r\nX-", 26);
	assert_int_equal(send(idle[1], head, sizeof(head), MSG_NOSIGNAL), (ssize_t)sizeof(head));
	metrics_status(idle[1], line, sizeof(line));
	assert_string_equal(line, "HTTP/1.1 431 Request Header Fields Too Large");
	for (int i = 0; i < 3; i++)
		close(idle[i]);
	/* Places come back as they close; the refusal was counted. */
	assert_true(raw_wait_metric(&server, "spillway_metrics_connections_refused_total", 1) >= 1);
	stop();
}

/* A client that sends its head one byte at a time never lets a read go
 * idle; the deadline still runs from accept, so it is closed. */
static void metrics_trickle_is_closed_at_the_deadline(void **state)
{
	(void)state;
	start("--handshake-timeout", "1", NULL, NULL, NULL, NULL);
	int fd = raw_dial_from(server.metrics_port, "127.0.0.1");
	assert_true(fd >= 0);
	const char *head = "GET /metrics HTTP/1.1\r\nX-Slow: ";
	assert_int_equal(send(fd, head, strlen(head), MSG_NOSIGNAL), (ssize_t)strlen(head));
	uint64_t until = raw_now_ms() + RAW_BOUND_MS;
	int closed = 0;
	while (!closed && raw_now_ms() < until) {
		(void)send(fd, "a", 1, MSG_NOSIGNAL | MSG_DONTWAIT);
		struct pollfd p = { .fd = fd, .events = POLLIN };
		poll(&p, 1, 200); /* the pace of the trickle; the close ends it */
		closed = raw_closed(fd);
	}
	close(fd);
	assert_true(closed);
	stop();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(out_of_descriptors_backs_off_and_serves),
		cmocka_unit_test(large_frame_before_auth_is_closed_at_the_header),
		cmocka_unit_test(silent_connection_is_closed_by_the_handshake_timeout),
		cmocka_unit_test(idle_timeout_spares_registered_connections),
		cmocka_unit_test(idle_timeout_all_closes_registered_ones_too),
		cmocka_unit_test(per_peer_cap_refuses_only_that_address),
		cmocka_unit_test(unauthenticated_and_total_caps_refuse_at_accept),
		cmocka_unit_test(output_of_nonreaders_stays_under_the_cap),
		cmocka_unit_test(metrics_endpoint_caps_its_connections),
		cmocka_unit_test(metrics_trickle_is_closed_at_the_deadline),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
