/* SPDX-License-Identifier: MIT */
/*
 * A server's life: a client that reconnects inside the grace period finds its
 * pages, one that does not loses them to reclamation; SIGTERM finishes the
 * requests already sent and exits 0; the metrics endpoint and spillctl report
 * what happened.
 */
#include <poll.h>
#include <signal.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "harness.h"

static void reconnect_inside_grace_finds_its_pages(void **state)
{
	(void)state;
	struct srv s = { 0 };
	assert_int_equal(srv_start(&s, "--capacity", "32M", "--grace", "600", NULL), 0);
	struct client *c = connect_as(&s, "returner", NULL);
	struct client_extent e[2];
	assert_int_equal(client_alloc_extents(c, 2, -1, e), 0);
	uint8_t page[SPILL_PAGE_SIZE];
	for (uint32_t p = 0; p < 64; p++) {
		fill_page(page, 300 + p);
		assert_int_equal(client_write(c, e[p % 2].id, p, 1, page), 0);
	}
	uint8_t token[CTRL_TOKEN_BYTES];
	memcpy(token, client_token(c), sizeof(token));
	uint64_t id = client_id(c);
	client_close(c);

	struct client_opts o = { .name = "returner", .token = token, .timeout_ms = 10000 };
	char err[256];
	assert_int_equal(client_connect(s.url, &o, &c, err, sizeof(err)), 0);
	assert_true(client_resumed(c));
	assert_int_equal(client_id(c), id);
	size_t n;
	const struct client_extent *back = client_resumed_extents(c, &n);
	assert_int_equal(n, 2);
	assert_true((back[0].id == e[0].id && back[1].id == e[1].id) ||
		    (back[0].id == e[1].id && back[1].id == e[0].id));
	for (uint32_t p = 0; p < 64; p++) {
		assert_int_equal(client_read(c, e[p % 2].id, p, 1, page, NULL), 0);
		assert_true(check_page(page, 300 + p));
	}
	client_close(c);
	assert_int_equal(srv_stop(&s), 0);
}

static void grace_expiry_reclaims_pages(void **state)
{
	(void)state;
	struct srv s = { 0 };
	assert_int_equal(srv_start(&s, "--capacity", "32M", "--grace", "1", NULL), 0);
	struct client *c = connect_as(&s, "leaver", NULL);
	struct client_extent e;
	assert_int_equal(client_alloc_extents(c, 1, -1, &e), 0);
	uint8_t token[CTRL_TOKEN_BYTES];
	memcpy(token, client_token(c), sizeof(token));
	client_close(c);
	assert_int_equal(srv_metric(&s, "spillway_pool_used_bytes{node=\"0\"}"), 2 << 20);
	/* The reaper runs every second: wait (bounded) for it to reclaim. */
	long long used = -1;
	for (int i = 0; i < 1000 && used != 0; i++) {
		used = srv_metric(&s, "spillway_pool_used_bytes{node=\"0\"}");
		if (used != 0)
			poll(NULL, 0, 10);
	}
	assert_int_equal(used, 0);
	assert_true(srv_log_has(&s, "did not return"));
	/* The token no longer opens anything. */
	struct client_opts o = { .name = "leaver", .token = token, .timeout_ms = 10000 };
	char err[256];
	assert_int_equal(client_connect(s.url, &o, &c, err, sizeof(err)), -ENOENT);
	assert_int_equal(srv_stop(&s), 0);
}

static void sigterm_finishes_requests_in_flight_and_exits_zero(void **state)
{
	(void)state;
	struct srv s = { 0 };
	assert_int_equal(srv_start(&s, "--capacity", "32M", NULL), 0);
	struct client *c = connect_as(&s, "until-the-end", NULL);
	struct client_extent e;
	assert_int_equal(client_alloc_extents(c, 1, -1, &e), 0);
	enum { N = 32 };
	uint8_t *pages = malloc((size_t)N * SPILL_PAGE_SIZE);
	for (int i = 0; i < N; i++)
		fill_page(pages + (size_t)i * SPILL_PAGE_SIZE, 700 + (uint64_t)i);
	assert_int_equal(client_write(c, e.id, 0, N, pages), 0);
	memset(pages, 0, (size_t)N * SPILL_PAGE_SIZE);
	/* Send N reads, then SIGTERM before collecting a single reply. On
	 * loopback a sent request is already in the server's socket. */
	struct client_req reqs[N], *done[N];
	for (int i = 0; i < N; i++) {
		reqs[i] = (struct client_req){ .op = SPILL_OP_READ, .extent = e.id,
					       .page = (uint32_t)i, .npages = 1,
					       .buf = pages + (size_t)i * SPILL_PAGE_SIZE };
		assert_int_equal(client_submit(c, &reqs[i]), 0);
	}
	assert_int_equal(client_flush(c), 0);
	kill(s.pid, SIGTERM);
	int got = 0;
	while (got < N) {
		int n = client_reap(c, done + got, N - got, 1);
		if (n <= 0)
			break;
		got += n;
	}
	assert_int_equal(got, N);
	for (int i = 0; i < N; i++) {
		assert_int_equal(reqs[i].status, 0);
		assert_true(check_page(pages + (size_t)i * SPILL_PAGE_SIZE, 700 + (uint64_t)i));
	}
	free(pages);
	client_close(c);
	assert_int_equal(srv_stop(&s), 0);
	assert_true(srv_log_has(&s, "stopped"));
}

static void metrics_endpoint_reports_pools_and_ops(void **state)
{
	(void)state;
	struct srv s = { 0 };
	assert_int_equal(srv_start(&s, "--capacity", "16M", NULL), 0);
	assert_int_equal(srv_metric(&s, "spillway_pool_bytes{node=\"0\"}"), 16 << 20);
	long long before = srv_metric(&s, "spillway_ops_total{op=\"write\"}");
	struct client *c = connect_as(&s, "metered", NULL);
	struct client_extent e;
	assert_int_equal(client_alloc_extents(c, 1, -1, &e), 0);
	uint8_t page[SPILL_PAGE_SIZE] = { 1 };
	for (int i = 0; i < 5; i++)
		assert_int_equal(client_write(c, e.id, (uint32_t)i, 1, page), 0);
	assert_int_equal(srv_metric(&s, "spillway_ops_total{op=\"write\"}"), before + 5);
	assert_int_equal(srv_metric(&s, "spillway_bytes_total{op=\"write\"}"), 5 * SPILL_PAGE_SIZE);
	assert_int_equal(srv_metric(&s, "spillway_clients"), 1);
	assert_int_equal(srv_metric(&s, "spillway_connections"), 1);
	assert_int_equal(srv_metric(&s, "spillway_op_latency_seconds_count{op=\"write\"}"), 5);
	char *text = srv_http_get(&s, "/metrics");
	assert_non_null(text);
	assert_non_null(strstr(text, "# TYPE spillway_op_latency_seconds histogram"));
	free(text);
	text = srv_http_get(&s, "/healthz");
	assert_string_equal(text, "ok\n");
	free(text);
	client_close(c);
	assert_int_equal(srv_stop(&s), 0);
}

static void spillctl_reports_and_fails_clearly(void **state)
{
	(void)state;
	struct srv s = { 0 };
	assert_int_equal(srv_start(&s, "--capacity", "16M", NULL), 0);
	struct client *c = connect_as(&s, "visible", NULL);
	struct client_extent e;
	assert_int_equal(client_alloc_extents(c, 1, -1, &e), 0);

	char out[8192];
	assert_int_equal(run_capture(out, sizeof(out), SPILLCTL_PATH, "--server", s.url, "--json",
				     "status", NULL), 0);
	assert_non_null(strstr(out, "\"capacity_bytes\":16777216"));
	assert_non_null(strstr(out, "\"used_bytes\":2097152"));
	assert_non_null(strstr(out, "\"nodes\":[{\"node\":0,\"capacity_bytes\":16777216,\"used_bytes\":2097152,\"free_bytes\":14680064}]"));
	assert_non_null(strstr(out, "\"clients\":[{\"name\":\"visible\""));
	assert_int_equal(run_capture(out, sizeof(out), SPILLCTL_PATH, "--server", s.url, "status", NULL), 0);
	assert_non_null(strstr(out, "visible"));
	assert_non_null(strstr(out, "connected"));
	assert_int_equal(run_capture(out, sizeof(out), SPILLCTL_PATH, "--server", s.url, "clients", NULL), 0);
	assert_non_null(strstr(out, "visible"));

	/* Usage errors: 2. Unreachable server: 1. One line on stderr each. */
	assert_int_equal(run_capture(out, sizeof(out), SPILLCTL_PATH, "frobnicate", NULL), 2);
	assert_non_null(strstr(run_stderr, "spillctl:"));
	assert_int_equal(run_capture(out, sizeof(out), SPILLCTL_PATH, "--bogus", "status", NULL), 2);
	assert_int_equal(run_capture(out, sizeof(out), SPILLCTL_PATH, "client", "set", "x", NULL), 2);
	client_close(c);
	assert_int_equal(srv_stop(&s), 0);
	assert_int_equal(run_capture(out, sizeof(out), SPILLCTL_PATH, "--server", s.url, "status", NULL), 1);
	assert_non_null(strstr(run_stderr, "cannot connect"));
	assert_null(strchr(strchr(run_stderr, '\n') + 1, '\n'));
}

static void bad_flags_exit_two_with_a_message(void **state)
{
	(void)state;
	char out[4096];
	assert_int_equal(run_capture(out, sizeof(out), SPILLWAYD_PATH, "--capacity", "lots", NULL), 2);
	assert_non_null(strstr(run_stderr, "--capacity"));
	assert_int_equal(run_capture(out, sizeof(out), SPILLWAYD_PATH, "--extent-size", "3M", NULL), 2);
	/* A server arbitrates or reports, not both; watermarks in order. */
	assert_int_equal(run_capture(out, sizeof(out), SPILLWAYD_PATH, "--arbiter", "--arbiter-url",
				     "tcp://127.0.0.1:1", NULL), 2);
	assert_non_null(strstr(run_stderr, "--arbiter-url"));
	assert_int_equal(run_capture(out, sizeof(out), SPILLWAYD_PATH, "--arbiter",
				     "--high-watermark", "70", "--low-watermark", "80", NULL), 2);
	assert_non_null(strstr(run_stderr, "--low-watermark"));
	assert_int_equal(run_capture(out, sizeof(out), SPILLWAYD_PATH, "--report-interval-ms", "5",
				     NULL), 2);
	assert_int_equal(run_capture(out, sizeof(out), SPILLWAYD_PATH, "--help", NULL), 0);
	assert_non_null(strstr(out, "--listen"));
}

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SANITIZER_BUILD 1
#else
#define SANITIZER_BUILD 0
#endif

static void memory_options_take_effect_or_fail_clearly(void **state)
{
	(void)state;
	/* --mlock: the pool is locked (the tests run as root, so it fits). */
	struct srv s = { 0 };
	if (geteuid() == 0) {
		assert_int_equal(srv_start(&s, "--capacity", "8M", "--mlock", NULL), 0);
		assert_true(srv_log_has(&s, "locked"));
		FILE *f;
		char path[64], line[256];
		long locked_kb = -1;
		snprintf(path, sizeof(path), "/proc/%d/status", (int)s.pid);
		assert_non_null(f = fopen(path, "r"));
		while (fgets(line, sizeof(line), f))
			if (!strncmp(line, "VmLck:", 6))
				locked_kb = atol(line + 6);
		fclose(f);
		/* ASan and TSan turn mlock into a no-op; the tree shares one build
		 * mode, so this test knows when the kernel never saw the call. */
		if (!SANITIZER_BUILD)
			assert_true(locked_kb >= 8 * 1024);
		assert_int_equal(srv_stop(&s), 0);
	}
	/* --hugetlb without reserved huge pages falls back and still serves. */
	struct srv h = { 0 };
	assert_int_equal(srv_start(&h, "--capacity", "8M", "--hugetlb", NULL), 0);
	struct client *c = connect_as(&h, "on-huge-or-not", NULL);
	struct client_extent e;
	assert_int_equal(client_alloc_extents(c, 1, -1, &e), 0);
	uint8_t page[SPILL_PAGE_SIZE];
	fill_page(page, 99);
	assert_int_equal(client_write(c, e.id, 0, 1, page), 0);
	memset(page, 0, sizeof(page));
	assert_int_equal(client_read(c, e.id, 0, 1, page, NULL), 0);
	assert_true(check_page(page, 99));
	client_close(c);
	assert_int_equal(srv_stop(&h), 0);
	/* A node this machine does not have: refused at start, with a reason. */
	struct srv n = { 0 };
	assert_int_not_equal(srv_start(&n, "--capacity", "8M", "--numa-nodes", "999", NULL), 0);
	assert_true(srv_log_has(&n, "bad NUMA node list"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(reconnect_inside_grace_finds_its_pages),
		cmocka_unit_test(grace_expiry_reclaims_pages),
		cmocka_unit_test(sigterm_finishes_requests_in_flight_and_exits_zero),
		cmocka_unit_test(metrics_endpoint_reports_pools_and_ops),
		cmocka_unit_test(spillctl_reports_and_fails_clearly),
		cmocka_unit_test(bad_flags_exit_two_with_a_message),
		cmocka_unit_test(memory_options_take_effect_or_fail_clearly),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
