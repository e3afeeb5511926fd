/* SPDX-License-Identifier: MIT */
/* Pre-shared-key authentication: the right key works, anything else is
 * refused with one log line naming the peer, and the server keeps serving. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <sys/stat.h>

#include "harness.h"

#define KEY "correct horse battery staple 42"

static struct srv server;
static struct auth_psk good;

static void right_key_is_accepted(void **state)
{
	(void)state;
	struct client *c = connect_as(&server, "authed", &good);
	struct client_extent e;
	assert_int_equal(client_alloc_extents(c, 1, -1, &e), 0);
	client_close(c);
}

static void wrong_key_is_refused(void **state)
{
	(void)state;
	struct auth_psk bad = good;
	bad.key[0] ^= 1;
	struct client_opts o = { .psk = &bad, .name = "intruder", .timeout_ms = 5000 };
	struct client *c = NULL;
	char err[256];
	assert_int_equal(client_connect(server.url, &o, &c, err, sizeof(err)), -EACCES);
	assert_null(c);
	assert_true(srv_log_has(&server, "authentication failed"));
	assert_true(srv_log_has(&server, "127.0.0.1:"));
	assert_int_equal(srv_metric(&server, "spillway_errors_total{kind=\"auth\"}"), 1);
	/* Still serving the right key. */
	struct client *ok = connect_as(&server, "after-intruder", &good);
	assert_int_equal(client_ping(ok), 0);
	client_close(ok);
}

static void missing_key_is_refused(void **state)
{
	(void)state;
	struct client_opts o = { .name = "keyless", .timeout_ms = 5000 };
	struct client *c = NULL;
	char err[256];
	assert_int_equal(client_connect(server.url, &o, &c, err, sizeof(err)), -EACCES);
	assert_non_null(strstr(err, "pre-shared key"));
}

static void requests_before_auth_close_the_connection(void **state)
{
	(void)state;
	/* A client with no key cannot skip Auth and go straight to admin. */
	struct client_opts o = { .timeout_ms = 5000 };
	struct client *c = NULL;
	char err[256];
	assert_int_equal(client_connect(server.url, &o, &c, err, sizeof(err)), -EACCES);
	assert_true(srv_log_has(&server, "request before the handshake finished") ||
		    srv_log_has(&server, "authentication failed"));
}

static void key_file_readable_by_others_is_refused_at_start(void **state)
{
	(void)state;
	struct srv s2 = { 0 };
	srv_write_psk(&s2, KEY);
	chmod(s2.psk_path, 0644);
	assert_int_not_equal(srv_start(&s2, "--capacity", "8M", "--psk-file", s2.psk_path, NULL), 0);
	assert_true(srv_log_has(&s2, "chmod 600"));
	unlink(s2.psk_path);
}

static void non_loopback_listener_needs_key_or_insecure(void **state)
{
	(void)state;
	struct srv s2 = { 0 };
	/* The harness's own --listen is loopback; add a wildcard listener. */
	assert_int_not_equal(srv_start(&s2, "--capacity", "8M", "--listen", "tcp://127.0.0.1:0",
				       "--listen", "tcp://0.0.0.0:0", NULL), 0);
	assert_true(srv_log_has(&s2, "without --psk-file"));
}

static void only_the_admin_key_changes_quotas(void **state)
{
	(void)state;
	struct srv s2 = { 0 }, admin = { 0 };
	srv_write_psk(&s2, KEY);
	srv_write_psk(&admin, "a different key for operators only");
	assert_int_equal(srv_start(&s2, "--capacity", "16M", "--psk-file", s2.psk_path,
				   "--admin-psk-file", admin.psk_path, NULL), 0);
	char out[4096];
	/* Holders of the clients' key may look, not change. */
	assert_int_equal(run_capture(out, sizeof(out), SPILLCTL_PATH, "--server", s2.url,
				     "--psk-file", s2.psk_path, "status", NULL), 0);
	assert_int_equal(run_capture(out, sizeof(out), SPILLCTL_PATH, "--server", s2.url,
				     "--psk-file", s2.psk_path, "client", "set", "db", "--limit",
				     "1G", NULL), 1);
	assert_non_null(strstr(run_stderr, "admin key"));
	/* A data client cannot raise its own limit either. */
	struct auth_psk data_key;
	assert_int_equal(auth_psk_load(s2.psk_path, &data_key), 0);
	struct client *c = connect_as(&s2, "db", &data_key);
	Spillway__AdminClientSet set = SPILLWAY__ADMIN_CLIENT_SET__INIT;
	set.name = "db";
	set.set_limit = 1;
	set.limit_bytes = 1ull << 30;
	Spillway__Ctrl req = SPILLWAY__CTRL__INIT, *rep = NULL;
	req.msg_case = SPILLWAY__CTRL__MSG_ADMIN_CLIENT_SET;
	req.admin_client_set = &set;
	assert_int_equal(client_ctrl(c, &req, &rep, NULL, 0), -EACCES);
	assert_int_equal(client_ping(c), 0); /* refused, not disconnected */
	/* Nor may it drain the server or pose as a server reporting usage. */
	Spillway__AdminDrain drain = SPILLWAY__ADMIN_DRAIN__INIT;
	drain.drain = 1;
	req.msg_case = SPILLWAY__CTRL__MSG_ADMIN_DRAIN;
	req.admin_drain = &drain;
	assert_int_equal(client_ctrl(c, &req, &rep, NULL, 0), -EACCES);
	Spillway__ServerInfo si = SPILLWAY__SERVER_INFO__INIT;
	si.url = "tcp://10.9.9.9:7707";
	Spillway__PeerReport report = SPILLWAY__PEER_REPORT__INIT;
	report.server = &si;
	req.msg_case = SPILLWAY__CTRL__MSG_PEER_REPORT;
	req.peer_report = &report;
	assert_int_equal(client_ctrl(c, &req, &rep, NULL, 0), -EACCES);
	assert_int_equal(client_ping(c), 0);
	/* The admin key may. */
	assert_int_equal(run_capture(out, sizeof(out), SPILLCTL_PATH, "--server", s2.url,
				     "--psk-file", admin.psk_path, "--json", "client", "set", "db",
				     "--limit", "8M", NULL), 0);
	assert_non_null(strstr(out, "\"limit_bytes\":8388608"));
	client_close(c);
	assert_int_equal(srv_stop(&s2), 0);
	unlink(s2.psk_path);
	unlink(admin.psk_path);
}

static int setup(void **state)
{
	(void)state;
	srv_write_psk(&server, KEY "\n");
	if (auth_psk_load(server.psk_path, &good))
		return -1;
	return srv_start(&server, "--capacity", "32M", "--psk-file", server.psk_path, NULL);
}

static int teardown(void **state)
{
	(void)state;
	unlink(server.psk_path);
	return srv_stop(&server) == 0 ? 0 : -1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(right_key_is_accepted),
		cmocka_unit_test(wrong_key_is_refused),
		cmocka_unit_test(missing_key_is_refused),
		cmocka_unit_test(requests_before_auth_close_the_connection),
		cmocka_unit_test(key_file_readable_by_others_is_refused_at_start),
		cmocka_unit_test(non_loopback_listener_needs_key_or_insecure),
		cmocka_unit_test(only_the_admin_key_changes_quotas),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
