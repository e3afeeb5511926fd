/* SPDX-License-Identifier: MIT */
/*
 * Who is the operator (server/control_gate.h), against a real spillwayd:
 * the clients' key alone is not, nor is a keyless loopback TCP session; the
 * admin socket is, for root and for a member of --admin-group (checked with
 * SO_PEERCRED, so a process that drops to nobody is not); the admin key is,
 * over TCP. PeerReport takes the clients' key when there is no admin key,
 * and only the admin key when there is one. Every operator-only message is
 * refused for a plain session, which stays open.
 */
#include <grp.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <cmocka.h>

#include "harness.h"

#define CLIENT_KEY "operator-test-clients-key-0123456789"
#define ADMIN_KEY "operator-test-admin-key-9876543210"
#define NOBODY 65534

static const char *socket_path(const struct srv *s)
{
	return s->admin_url + strlen("unix://");
}

/* One AdminClientSet on a fresh session to url; 0 or -errno. */
static int set_limit(const char *url, const struct auth_psk *psk)
{
	struct client_opts o = { .psk = psk, .timeout_ms = 20000 };
	struct client *c = NULL;
	int rc = client_connect(url, &o, &c, NULL, 0);
	if (rc)
		return rc;
	Spillway__AdminClientSet set = SPILLWAY__ADMIN_CLIENT_SET__INIT;
	set.name = "db";
	set.set_limit = 1;
	set.limit_bytes = 8 << 20;
	Spillway__Ctrl req = SPILLWAY__CTRL__INIT, *rep = NULL;
	req.msg_case = SPILLWAY__CTRL__MSG_ADMIN_CLIENT_SET;
	req.admin_client_set = &set;
	rc = client_ctrl(c, &req, &rep, NULL, 0);
	if (!rc && rep->msg_case != SPILLWAY__CTRL__MSG_ADMIN_CLIENT_SET_REPLY)
		rc = -EPROTO;
	ctrl_free(rep);
	client_close(c);
	return rc;
}

/* set_limit from a child that became uid nobody with primary group gid and
 * supplementary groups; its result, or -ECHILD if it could not drop root. */
static int set_limit_as_nobody(const char *url, gid_t gid, const gid_t *groups, int ngroups)
{
	pid_t pid = fork();
	if (pid == 0) {
		if (setgroups((size_t)ngroups, groups) || setgid(gid) || setuid(NOBODY))
			_exit(100);
		_exit(-set_limit(url, NULL));
	}
	int st;
	if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) == 100)
		return -ECHILD;
	return -WEXITSTATUS(st);
}

static void clients_key_alone_is_not_operator(void **state)
{
	(void)state;
	struct srv s = { 0 };
	srv_write_psk(&s, CLIENT_KEY);
	assert_int_equal(srv_start(&s, "--capacity", "16M", "--psk-file", s.psk_path, NULL), 0);
	char out[4096];
	assert_int_equal(run_capture(out, sizeof(out), SPILLCTL_PATH, "--server", s.url,
				     "--psk-file", s.psk_path, "client", "set", "db", "--limit",
				     "8M", NULL), 1);
	assert_non_null(strstr(run_stderr, "changing quotas needs operator privilege"));
	/* Reading stays open to it. */
	assert_int_equal(run_capture(out, sizeof(out), SPILLCTL_PATH, "--server", s.url,
				     "--psk-file", s.psk_path, "status", NULL), 0);
	/* Root on the admin socket needs no key, even on a keyed server. */
	assert_int_equal(run_capture(out, sizeof(out), SPILLCTL_PATH, "--server", s.admin_url,
				     "--json", "client", "set", "db", "--limit", "8M", NULL), 0);
	assert_non_null(strstr(out, "\"limit_bytes\":8388608"));
	assert_true(srv_log_has(&s, "unix:uid=0,"));
	assert_int_equal(srv_stop(&s), 0);
	unlink(s.psk_path);
}

static void keyless_tcp_is_not_operator_but_admin_socket_is(void **state)
{
	(void)state;
	struct srv s = { 0 };
	assert_int_equal(srv_start(&s, "--capacity", "16M", NULL), 0);
	char out[4096];
	assert_int_equal(run_capture(out, sizeof(out), SPILLCTL_PATH, "--server", s.url,
				     "client", "set", "db", "--limit", "8M", NULL), 1);
	assert_non_null(strstr(run_stderr, "operator privilege"));
	assert_int_equal(run_capture(out, sizeof(out), SPILLCTL_PATH, "--server", s.admin_url,
				     "client", "set", "db", "--limit", "8M", NULL), 0);
	/* The socket file: 0660, and gone once the server stops. */
	struct stat st;
	assert_int_equal(stat(socket_path(&s), &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0660);
	assert_int_equal(srv_metric(&s, "spillway_admin_socket_connections_total{peer=\"operator\"}"),
			 1);
	assert_int_equal(srv_stop(&s), 0);
	assert_int_not_equal(stat(socket_path(&s), &st), 0);
}

static void unix_peer_neither_root_nor_in_group_is_refused(void **state)
{
	(void)state;
	struct srv s = { 0 };
	assert_int_equal(srv_start(&s, "--capacity", "16M", NULL), 0);
	/* The mode alone would keep nobody out; open it so that the
	 * credential check is what refuses. */
	assert_int_equal(chmod(socket_path(&s), 0666), 0);
	gid_t g = NOBODY;
	assert_int_equal(set_limit_as_nobody(s.admin_url, NOBODY, &g, 1), -EACCES);
	assert_int_equal(srv_metric(&s, "spillway_admin_socket_connections_total{peer=\"other\"}"),
			 1);
	assert_int_equal(srv_stop(&s), 0);
}

static void admin_group_member_is_operator(void **state)
{
	(void)state;
	struct group *gr = getgrnam("nogroup");
	if (!gr)
		skip(); /* no group named nogroup on this system */
	gid_t member = gr->gr_gid;
	struct srv s = { 0 };
	assert_int_equal(srv_start(&s, "--capacity", "16M", "--admin-group", "nogroup", NULL), 0);
	/* The socket belongs to the group: members connect without a chmod. */
	struct stat st;
	assert_int_equal(stat(socket_path(&s), &st), 0);
	assert_int_equal(st.st_gid, member);
	/* A supplementary member (primary group daemon, 1): SO_PEERGROUPS. */
	assert_int_equal(set_limit_as_nobody(s.admin_url, 1, &member, 1), 0);
	/* Not a member: refused (the mode is opened so the check decides). */
	assert_int_equal(chmod(socket_path(&s), 0666), 0);
	gid_t other = 1;
	assert_int_equal(set_limit_as_nobody(s.admin_url, 1, &other, 1), -EACCES);
	assert_int_equal(srv_stop(&s), 0);
}

/* Every operator-only message: EAUTH for a session with the clients' key,
 * which stays open. */
static void every_operator_message_is_refused_for_a_plain_session(void **state)
{
	(void)state;
	struct srv s = { 0 };
	srv_write_psk(&s, CLIENT_KEY);
	assert_int_equal(srv_start(&s, "--capacity", "16M", "--psk-file", s.psk_path, NULL), 0);
	struct auth_psk key;
	assert_int_equal(auth_psk_load(s.psk_path, &key), 0);
	struct client *c = connect_as(&s, "plain", &key);
	Spillway__AdminClientSet set = SPILLWAY__ADMIN_CLIENT_SET__INIT;
	set.name = "plain";
	Spillway__AdminReclaim rec = SPILLWAY__ADMIN_RECLAIM__INIT;
	rec.name = "plain";
	rec.bytes = 2 << 20;
	rec.deadline_ms = 1000;
	Spillway__AdminDrain drain = SPILLWAY__ADMIN_DRAIN__INIT;
	drain.drain = 1;
	Spillway__AdminExportCreate ec = SPILLWAY__ADMIN_EXPORT_CREATE__INIT;
	ec.name = "x";
	ec.size_bytes = 2 << 20;
	Spillway__AdminExportDelete ed = SPILLWAY__ADMIN_EXPORT_DELETE__INIT;
	ed.name = "x";
	const struct {
		Spillway__Ctrl__MsgCase kind;
		void *body;
	} ops[] = {
		{ SPILLWAY__CTRL__MSG_ADMIN_CLIENT_SET, &set },
		{ SPILLWAY__CTRL__MSG_ADMIN_RECLAIM, &rec },
		{ SPILLWAY__CTRL__MSG_ADMIN_DRAIN, &drain },
		{ SPILLWAY__CTRL__MSG_ADMIN_EXPORT_CREATE, &ec },
		{ SPILLWAY__CTRL__MSG_ADMIN_EXPORT_DELETE, &ed },
	};
	long long before = srv_metric(&s, "spillway_errors_total{kind=\"auth\"}");
	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		Spillway__Ctrl req = SPILLWAY__CTRL__INIT, *rep = NULL;
		req.msg_case = ops[i].kind;
		req.admin_status = ops[i].body; /* a oneof: one pointer for all */
		char why[256] = "";
		int rc = client_ctrl(c, &req, &rep, why, sizeof(why));
		if (rc != -EACCES)
			fail_msg("message %d: %d %s", (int)ops[i].kind, rc, why);
		assert_non_null(strstr(why, "needs operator privilege"));
		assert_int_equal(client_ping(c), 0);
	}
	assert_int_equal(srv_metric(&s, "spillway_errors_total{kind=\"auth\"}"),
			 before + (long long)(sizeof(ops) / sizeof(ops[0])));
	/* Reading needs no privilege. */
	ctrl_free(admin_status(c));
	client_close(c);
	assert_int_equal(srv_stop(&s), 0);
	unlink(s.psk_path);
}

static int send_report(const char *url, const struct auth_psk *psk)
{
	struct client_opts o = { .psk = psk, .timeout_ms = 20000 };
	struct client *c = NULL;
	int rc = client_connect(url, &o, &c, NULL, 0);
	if (rc)
		return rc;
	Spillway__ServerInfo si = SPILLWAY__SERVER_INFO__INIT;
	si.url = "tcp://127.0.0.9:7707";
	Spillway__PeerReport report = SPILLWAY__PEER_REPORT__INIT;
	report.server = &si;
	Spillway__Ctrl req = SPILLWAY__CTRL__INIT, *rep = NULL;
	req.msg_case = SPILLWAY__CTRL__MSG_PEER_REPORT;
	req.peer_report = &report;
	rc = client_ctrl(c, &req, &rep, NULL, 0);
	if (!rc && rep->msg_case != SPILLWAY__CTRL__MSG_PEER_REPORT_REPLY)
		rc = -EPROTO;
	ctrl_free(rep);
	client_close(c);
	return rc;
}

static void peer_reports_take_the_admin_key_when_there_is_one(void **state)
{
	(void)state;
	struct srv s = { 0 }, admin = { 0 };
	srv_write_psk(&s, CLIENT_KEY);
	srv_write_psk(&admin, ADMIN_KEY);
	struct auth_psk key, admin_key;
	assert_int_equal(auth_psk_load(s.psk_path, &key), 0);
	assert_int_equal(auth_psk_load(admin.psk_path, &admin_key), 0);
	/* No admin key: the clients' key speaks for a server, but is no operator. */
	assert_int_equal(srv_start(&s, "--capacity", "16M", "--arbiter", "--psk-file", s.psk_path,
				   NULL), 0);
	assert_int_equal(send_report(s.url, &key), 0);
	assert_int_equal(set_limit(s.url, &key), -EACCES);
	assert_int_equal(srv_stop(&s), 0);
	/* With one: only the admin key does either. */
	assert_int_equal(srv_start(&s, "--capacity", "16M", "--arbiter", "--psk-file", s.psk_path,
				   "--admin-psk-file", admin.psk_path, NULL), 0);
	assert_int_equal(send_report(s.url, &key), -EACCES);
	assert_int_equal(send_report(s.url, &admin_key), 0);
	assert_int_equal(set_limit(s.url, &key), -EACCES);
	assert_int_equal(set_limit(s.url, &admin_key), 0);
	assert_int_equal(srv_stop(&s), 0);
	unlink(s.psk_path);
	unlink(admin.psk_path);
}

/* A root session on the admin socket of a keyed server skipped Auth; it may
 * still send one (a client holding a key makes the server prove itself),
 * and the server checks it: a wrong MAC is "authentication failed", not
 * "not a request this server accepts here". */
static void admin_socket_session_may_still_authenticate(void **state)
{
	(void)state;
	struct srv s = { 0 };
	srv_write_psk(&s, CLIENT_KEY);
	assert_int_equal(srv_start(&s, "--capacity", "16M", "--psk-file", s.psk_path, NULL), 0);
	struct client *c = connect_to(s.admin_url, NULL, NULL);
	uint8_t mac[AUTH_MAC_BYTES] = { 0 };
	Spillway__Auth a = SPILLWAY__AUTH__INIT;
	a.mac.data = mac;
	a.mac.len = sizeof(mac);
	Spillway__Ctrl req = SPILLWAY__CTRL__INIT, *rep = NULL;
	req.msg_case = SPILLWAY__CTRL__MSG_AUTH;
	req.auth = &a;
	char why[256] = "";
	assert_int_equal(client_ctrl(c, &req, &rep, why, sizeof(why)), -EACCES);
	assert_string_equal(why, "authentication failed");
	client_close(c);
	/* Once registered, Auth is no longer accepted. */
	c = connect_to(s.admin_url, "root-client", NULL);
	assert_int_equal(client_ctrl(c, &req, &rep, why, sizeof(why)), -EOPNOTSUPP);
	client_close(c);
	assert_int_equal(srv_stop(&s), 0);
	unlink(s.psk_path);
}

static void explicit_admin_socket_in_use_is_fatal(void **state)
{
	(void)state;
	struct srv a = { 0 }, b = { 0 };
	assert_int_equal(srv_start(&a, "--capacity", "8M", NULL), 0);
	assert_int_not_equal(srv_start(&b, "--capacity", "8M", "--admin-socket", socket_path(&a),
				       NULL), 0);
	assert_true(srv_log_has(&b, "another server listens there"));
	/* A stale one (nobody listening) is replaced. */
	srv_kill(&a);
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", socket_path(&a));
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(fd);
	assert_int_equal(srv_start(&b, "--capacity", "8M", "--admin-socket", socket_path(&a), NULL),
			 0);
	char out[4096];
	assert_int_equal(run_capture(out, sizeof(out), SPILLCTL_PATH, "--server", a.admin_url,
				     "status", NULL), 0);
	assert_int_equal(srv_stop(&b), 0);
}

static void bad_admin_flags_are_refused_at_start(void **state)
{
	(void)state;
	char out[4096];
	/* A relative path is a usage error; an unknown group fails start-up. */
	assert_int_equal(run_capture(out, sizeof(out), SPILLWAYD_PATH, "--metrics", "none",
				     "--admin-socket", "relative.sock", NULL), 2);
	assert_non_null(strstr(run_stderr, "--admin-socket: expected an absolute path or none"));
	assert_int_equal(run_capture(out, sizeof(out), SPILLWAYD_PATH, "--listen",
				     "tcp://127.0.0.1:0", "--metrics", "none", "--capacity", "8M",
				     "--admin-socket", "none", "--admin-group",
				     "no-such-group-spillway", NULL), 1);
	assert_non_null(strstr(run_stderr, "no such group"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(clients_key_alone_is_not_operator),
		cmocka_unit_test(keyless_tcp_is_not_operator_but_admin_socket_is),
		cmocka_unit_test(unix_peer_neither_root_nor_in_group_is_refused),
		cmocka_unit_test(admin_group_member_is_operator),
		cmocka_unit_test(every_operator_message_is_refused_for_a_plain_session),
		cmocka_unit_test(peer_reports_take_the_admin_key_when_there_is_one),
		cmocka_unit_test(admin_socket_session_may_still_authenticate),
		cmocka_unit_test(explicit_admin_socket_in_use_is_fatal),
		cmocka_unit_test(bad_admin_flags_are_refused_at_start),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
