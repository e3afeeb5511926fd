/* SPDX-License-Identifier: MIT */
/*
 * The client against a hostile server. A fake spillwayd in this process
 * (a thread on 127.0.0.1:0 speaking the wire protocol through lib/frame.h
 * and lib/ctrl.h) lies in the ways issue 12 lists, and both the core client
 * (client_connect, client_ctrl) and the real spillctl binary must hold:
 *   - a keyed client refuses a server that claims no authentication is
 *     needed, or that cannot prove the key;
 *   - unsolicited control messages cannot grow the client beyond its queue
 *     bound (count and bytes), nor a duplicated reply leak, nor a message
 *     that unpacks to many times its size;
 *   - nothing a server sends reaches the terminal raw, and --json stays
 *     well-formed.
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

/* What the fake server does with the requests it gets. */
enum fake_mode {
	FAKE_NO_AUTH,       /* "no authentication needed", then a made-up status */
	FAKE_WRONG_KEY,     /* asks for auth, answers with a MAC of another key */
	FAKE_FLOOD_COUNT,   /* 1000 small Reclaim pushes before the reply */
	FAKE_FLOOD_BYTES,   /* a few 200 KiB pushes before the reply */
	FAKE_DUP_REPLY,     /* every reply twice, in one write */
	FAKE_INFLATE,       /* a status of 500k empty nodes: 1 MiB, 28 unpacked */
	FAKE_INJECT,        /* status and export names full of control bytes */
	FAKE_INJECT_ERROR,  /* an Error reply whose text is an escape sequence */
};

#define IMPOSTOR_ID "impostor-status"
#define FLOOD_COUNT 1000
#define FLOOD_BIG   (200 * 1024)

/* Each with what it must become in text and in JSON output. Quote,
 * backslash, ESC sequences (title, clear screen), BEL, CR/LF, a C1 CSI both
 * well formed (c2 9b) and as a bare byte, an invalid byte, and an 'é' that
 * is fine as it is. */
#define EVIL_ID      "ev\"il\\\x1b]0;pwned\x07\x1b[2J"
#define EVIL_ID_TEXT "ev\"il\\\\\\x1b]0;pwned\\x07\\x1b[2J"
#define EVIL_ID_JSON "\"server_id\":\"ev\\\"il\\\\\\u001b]0;pwned\\u0007\\u001b[2J\""
#define EVIL_VER      "1.0\r\n\xc2\x9b" "31m\x9b\xff\xc3\xa9"
#define EVIL_VER_TEXT "1.0\\x0d\\x0a\\xc2\\x9b31m\\x9b\\xff\xc3\xa9"
#define EVIL_VER_JSON "\"version\":\"1.0\\u000d\\u000a\\u009b31m\\ufffd\\ufffd\xc3\xa9\""
#define EVIL_EXPORT   "disk\x1b[8m"
#define EVIL_ERROR    "refused\x1b[31m red"

static struct auth_psk key, other_key;
static struct srv keyfile; /* only for its psk_path */
static _Atomic int mode;
static int listen_fd;
static char fake_url[64];
static pthread_t fake_thread;

/* --- the fake server ---------------------------------------------------- */

static int recv_exact(int fd, void *buf, size_t len)
{
	size_t got = 0;
	while (got < len) {
		ssize_t n = recv(fd, (uint8_t *)buf + got, len - got, 0);
		if (n <= 0)
			return -1;
		got += (size_t)n;
	}
	return 0;
}

/* The next control request, or NULL when the client is gone (or sent
 * anything else). */
static Spillway__Ctrl *fake_read(int fd, struct frame_hdr *h)
{
	struct spill_wire_hdr w;
	if (recv_exact(fd, &w, sizeof(w)) || frame_hdr_unpack(&w, h, NULL) ||
	    h->op != SPILL_OP_CTRL)
		return NULL;
	uint8_t *payload = malloc(h->payload_len);
	Spillway__Ctrl *m = NULL;
	if (payload && !recv_exact(fd, payload, h->payload_len))
		m = ctrl_unpack(payload, h->payload_len, NULL, NULL);
	free(payload);
	return m;
}

/* Append one sealed control frame to out (a growing buffer). */
static void frame_append(uint8_t **out, size_t *len, uint16_t op, uint64_t req_id,
			 const Spillway__Ctrl *m)
{
	size_t plen = ctrl_packed_size(m);
	*out = realloc(*out, *len + SPILL_WIRE_HDR_SIZE + plen);
	assert_non_null(*out);
	uint8_t *payload = *out + *len + SPILL_WIRE_HDR_SIZE;
	ctrl_pack(m, payload, plen);
	struct frame_hdr h = { .op = op, .req_id = req_id, .payload_len = (uint32_t)plen };
	struct spill_wire_hdr w;
	frame_hdr_pack(&h, &w);
	struct iovec iov = { payload, plen };
	frame_seal(&w, &iov, 1);
	memcpy(*out + *len, &w, sizeof(w));
	*len += SPILL_WIRE_HDR_SIZE + plen;
}

/* Send and forget: the client may well have hung up on us. */
static void fake_send(int fd, uint8_t *buf, size_t len)
{
	size_t off = 0;
	while (off < len) {
		ssize_t n = send(fd, buf + off, len - off, MSG_NOSIGNAL);
		if (n <= 0)
			break;
		off += (size_t)n;
	}
	free(buf);
}

static void reply(int fd, const struct frame_hdr *req, const Spillway__Ctrl *m, int copies)
{
	uint8_t *out = NULL;
	size_t len = 0;
	for (int i = 0; i < copies; i++)
		frame_append(&out, &len, SPILL_OP_CTRL | SPILL_OP_REPLY, req->req_id, m);
	fake_send(fd, out, len);
}

static void push_unsolicited(int fd, int big)
{
	uint8_t *out = NULL;
	size_t len = 0;
	Spillway__Ctrl m = SPILLWAY__CTRL__INIT;
	Spillway__Reclaim rec = SPILLWAY__RECLAIM__INIT;
	Spillway__AdminStatusReply st = SPILLWAY__ADMIN_STATUS_REPLY__INIT;
	char *filler = NULL;
	int n = FLOOD_COUNT;
	if (big) {
		/* Few enough to stay under the count bound, large enough in all
		 * to pass the byte bound. */
		filler = malloc(FLOOD_BIG + 1);
		memset(filler, 'x', FLOOD_BIG);
		filler[FLOOD_BIG] = '\0';
		st.server_id = "push";
		st.version = filler;
		m.msg_case = SPILLWAY__CTRL__MSG_ADMIN_STATUS_REPLY;
		m.admin_status_reply = &st;
		n = 16;
	} else {
		rec.bytes = 4096;
		m.msg_case = SPILLWAY__CTRL__MSG_RECLAIM;
		m.reclaim = &rec;
	}
	for (int i = 0; i < n; i++) {
		rec.reclaim_id = (uint64_t)i + 1;
		frame_append(&out, &len, SPILL_OP_CTRL, 0, &m);
	}
	free(filler);
	fake_send(fd, out, len);
}

static void answer_hello(int fd, const struct frame_hdr *h, const Spillway__Hello *hello,
			 uint8_t sn[AUTH_NONCE_BYTES], uint8_t cn[AUTH_NONCE_BYTES])
{
	memcpy(cn, hello->client_nonce.data, AUTH_NONCE_BYTES);
	memset(sn, 0x5a, AUTH_NONCE_BYTES);
	Spillway__HelloReply r = SPILLWAY__HELLO_REPLY__INIT;
	r.version = SPILL_WIRE_VERSION;
	r.auth_required = mode == FAKE_WRONG_KEY;
	r.server_nonce.data = sn;
	r.server_nonce.len = AUTH_NONCE_BYTES;
	r.max_inflight = 64;
	r.max_batch_pages = SPILL_MAX_BATCH_PAGES;
	r.extent_bytes = 2u << 20;
	r.server_id = mode == FAKE_INJECT ? EVIL_ID : "fake";
	Spillway__Ctrl m = SPILLWAY__CTRL__INIT;
	m.msg_case = SPILLWAY__CTRL__MSG_HELLO_REPLY;
	m.hello_reply = &r;
	reply(fd, h, &m, 1);
}

static void answer_status(int fd, const struct frame_hdr *h)
{
	Spillway__Ctrl m = SPILLWAY__CTRL__INIT;
	Spillway__AdminStatusReply st = SPILLWAY__ADMIN_STATUS_REPLY__INIT;
	Spillway__Error e = SPILLWAY__ERROR__INIT;
	if (mode == FAKE_INJECT_ERROR) {
		e.status = SPILL_ST_EINVAL;
		e.message = EVIL_ERROR;
		m.msg_case = SPILLWAY__CTRL__MSG_ERROR;
		m.error = &e;
		reply(fd, h, &m, 1);
		return;
	}
	st.server_id = mode == FAKE_INJECT ? EVIL_ID : IMPOSTOR_ID;
	st.version = mode == FAKE_INJECT ? EVIL_VER : "0.0-fake";
	st.capacity_bytes = 1ull << 40;
	m.msg_case = SPILLWAY__CTRL__MSG_ADMIN_STATUS_REPLY;
	m.admin_status_reply = &st;
	Spillway__NodeStats empty = SPILLWAY__NODE_STATS__INIT, **nodes = NULL;
	if (mode == FAKE_INFLATE) {
		/* Two bytes each on the wire, one shared struct here. */
		st.n_nodes = 500000;
		nodes = malloc(st.n_nodes * sizeof(*nodes));
		for (size_t i = 0; i < st.n_nodes; i++)
			nodes[i] = &empty;
		st.nodes = nodes;
	}
	if (mode == FAKE_FLOOD_COUNT || mode == FAKE_FLOOD_BYTES)
		push_unsolicited(fd, mode == FAKE_FLOOD_BYTES);
	reply(fd, h, &m, mode == FAKE_DUP_REPLY ? 50 : 1);
	free(nodes);
}

static void answer_exports(int fd, const struct frame_hdr *h)
{
	Spillway__ExportInfo e = SPILLWAY__EXPORT_INFO__INIT, *list[] = { &e };
	e.name = EVIL_EXPORT;
	e.client = EVIL_ID;
	e.size_bytes = 1u << 20;
	Spillway__AdminExportListReply r = SPILLWAY__ADMIN_EXPORT_LIST_REPLY__INIT;
	r.exports = list;
	r.n_exports = 1;
	Spillway__Ctrl m = SPILLWAY__CTRL__INIT;
	m.msg_case = SPILLWAY__CTRL__MSG_ADMIN_EXPORT_LIST_REPLY;
	m.admin_export_list_reply = &r;
	reply(fd, h, &m, 1);
}

static void fake_serve(int fd)
{
	uint8_t sn[AUTH_NONCE_BYTES], cn[AUTH_NONCE_BYTES];
	struct frame_hdr h;
	Spillway__Ctrl *req;
	while ((req = fake_read(fd, &h))) {
		switch (req->msg_case) {
		case SPILLWAY__CTRL__MSG_HELLO:
			answer_hello(fd, &h, req->hello, sn, cn);
			break;
		case SPILLWAY__CTRL__MSG_AUTH: {
			/* The client's MAC is never even checked: we cannot, and a
			 * server without the key can only guess its own. */
			uint8_t mac[AUTH_MAC_BYTES];
			auth_mac(&other_key, AUTH_ROLE_SERVER, sn, cn, mac);
			Spillway__AuthReply a = SPILLWAY__AUTH_REPLY__INIT;
			a.mac.data = mac;
			a.mac.len = sizeof(mac);
			Spillway__Ctrl m = SPILLWAY__CTRL__INIT;
			m.msg_case = SPILLWAY__CTRL__MSG_AUTH_REPLY;
			m.auth_reply = &a;
			reply(fd, &h, &m, 1);
			break;
		}
		case SPILLWAY__CTRL__MSG_ADMIN_STATUS:
			answer_status(fd, &h);
			break;
		case SPILLWAY__CTRL__MSG_ADMIN_EXPORT_LIST:
			answer_exports(fd, &h);
			break;
		default:
			break;
		}
		ctrl_free(req);
	}
	close(fd);
}

static void *fake_conn(void *arg)
{
	fake_serve((int)(intptr_t)arg);
	return NULL;
}

/* A thread per connection: a client a failed test leaves open must not
 * hold up the next test. */
static void *fake_main(void *arg)
{
	(void)arg;
	int fd;
	while ((fd = accept(listen_fd, NULL, NULL)) >= 0) {
		pthread_t t;
		if (pthread_create(&t, NULL, fake_conn, (void *)(intptr_t)fd)) {
			close(fd);
			continue;
		}
		pthread_detach(t);
	}
	return NULL; /* teardown shut the listener down */
}

static int fake_start(void **state)
{
	(void)state;
	listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t alen = sizeof(a);
	if (listen_fd < 0 || bind(listen_fd, (struct sockaddr *)&a, sizeof(a)) ||
	    listen(listen_fd, 8) || getsockname(listen_fd, (struct sockaddr *)&a, &alen))
		return -1;
	snprintf(fake_url, sizeof(fake_url), "tcp://127.0.0.1:%d", ntohs(a.sin_port));
	srv_write_psk(&keyfile, "the operator's key, 32 bytes ok");
	if (auth_psk_load(keyfile.psk_path, &key))
		return -1;
	other_key = key;
	other_key.key[0] ^= 1;
	return pthread_create(&fake_thread, NULL, fake_main, NULL);
}

static int fake_stop(void **state)
{
	(void)state;
	shutdown(listen_fd, SHUT_RDWR);
	pthread_join(fake_thread, NULL);
	close(listen_fd);
	unlink(keyfile.psk_path);
	return 0;
}

/* --- helpers ------------------------------------------------------------ */

static int connect_fake(const struct auth_psk *psk, struct client **c, char *err, size_t cap)
{
	struct client_opts o = { .psk = psk, .timeout_ms = 20000 };
	*c = NULL;
	return client_connect(fake_url, &o, c, err, cap);
}

static int ask_status(struct client *c, char *err, size_t cap)
{
	Spillway__AdminStatus a = SPILLWAY__ADMIN_STATUS__INIT;
	Spillway__Ctrl req = SPILLWAY__CTRL__INIT, *rep = NULL;
	req.msg_case = SPILLWAY__CTRL__MSG_ADMIN_STATUS;
	req.admin_status = &a;
	int rc = client_ctrl(c, &req, &rep, err, cap);
	ctrl_free(rep);
	return rc;
}

/* Terminal-safe: no control byte but newline and tab, no DEL, nothing
 * beyond ASCII except the one 'é' (c3 a9) the fake server sends. */
static void assert_terminal_safe(const char *out)
{
	for (const unsigned char *p = (const unsigned char *)out; *p; p++) {
		if (p[0] == 0xc3 && p[1] == 0xa9) {
			p++;
			continue;
		}
		if ((*p < 0x20 && *p != '\n' && *p != '\t') || *p >= 0x7f)
			fail_msg("unsafe byte 0x%02x at offset %td of:\n%s", *p,
				 (const char *)p - out, out);
	}
}

static void assert_contains(const char *out, const char *want)
{
	if (!strstr(out, want))
		fail_msg("expected \"%s\" in:\n%s", want, out);
}

/* --- (a) no authentication downgrade ------------------------------------ */

static void keyed_client_refuses_server_without_auth(void **state)
{
	(void)state;
	mode = FAKE_NO_AUTH;
	struct client *c;
	char err[256];
	assert_int_equal(connect_fake(&key, &c, err, sizeof(err)), -EACCES);
	assert_null(c);
	assert_non_null(strstr(err, "did not prove the key"));
	/* Without a key, this server is as good as any (and says so). */
	assert_int_equal(connect_fake(NULL, &c, err, sizeof(err)), 0);
	assert_int_equal(ask_status(c, err, sizeof(err)), 0);
	client_close(c);
}

static void spillctl_with_key_refuses_server_without_auth(void **state)
{
	(void)state;
	mode = FAKE_NO_AUTH;
	char out[8192];
	int st = run_capture(out, sizeof(out), SPILLCTL_PATH, "--server", fake_url, "--psk-file",
			     keyfile.psk_path, "status", NULL);
	assert_int_not_equal(st, 0);
	assert_null(strstr(out, IMPOSTOR_ID));
	assert_string_equal(out, "");
	assert_non_null(strstr(run_stderr, "did not prove the key"));
	st = run_capture(out, sizeof(out), SPILLCTL_PATH, "--server", fake_url, "--psk-file",
			 keyfile.psk_path, "--json", "export", "list", NULL);
	assert_int_not_equal(st, 0);
	assert_string_equal(out, "");
}

static void keyed_client_refuses_server_with_another_key(void **state)
{
	(void)state;
	mode = FAKE_WRONG_KEY;
	struct client *c;
	char err[256];
	assert_int_equal(connect_fake(&key, &c, err, sizeof(err)), -EACCES);
	assert_null(c);
	assert_non_null(strstr(err, "could not prove"));
	char out[8192];
	assert_int_not_equal(run_capture(out, sizeof(out), SPILLCTL_PATH, "--server", fake_url,
					 "--psk-file", keyfile.psk_path, "status", NULL), 0);
	assert_string_equal(out, "");
}

/* The same against a real spillwayd started without a key: spillctl with a
 * key refuses it, without one it works. */
static void spillctl_with_key_refuses_real_keyless_server(void **state)
{
	(void)state;
	struct srv s;
	assert_int_equal(srv_start(&s, "--capacity", "16M", NULL), 0);
	char out[8192];
	assert_int_equal(run_capture(out, sizeof(out), SPILLCTL_PATH, "--server", s.url,
				     "--psk-file", keyfile.psk_path, "status", NULL), 1);
	assert_string_equal(out, "");
	assert_contains(run_stderr, "did not prove the key");
	assert_int_equal(run_capture(out, sizeof(out), SPILLCTL_PATH, "--server", s.url,
				     "status", NULL), 0);
	assert_int_equal(srv_stop(&s), 0);
}

/* --- (b) a flood cannot grow the client --------------------------------- */

static void unsolicited_flood_breaks_the_connection(void **state)
{
	(void)state;
	int modes[] = { FAKE_FLOOD_COUNT, FAKE_FLOOD_BYTES };
	for (size_t i = 0; i < 2; i++) {
		mode = modes[i];
		struct client *c;
		char err[256];
		assert_int_equal(connect_fake(NULL, &c, err, sizeof(err)), 0);
		/* The reply comes after the flood: without a bound the call
		 * would succeed, having queued all of it. */
		assert_int_equal(ask_status(c, err, sizeof(err)), -ENOBUFS);
		assert_int_equal(client_dead(c), -ENOBUFS);
		client_close(c);
	}
}

static void duplicate_reply_breaks_the_connection(void **state)
{
	(void)state;
	mode = FAKE_DUP_REPLY;
	struct client *c;
	char err[256];
	assert_int_equal(connect_fake(NULL, &c, err, sizeof(err)), 0);
	/* The first copy answers the request; the copies behind it, in the
	 * same read, are a protocol violation instead of a leak each. */
	assert_int_equal(ask_status(c, err, sizeof(err)), 0);
	assert_int_equal(client_dead(c), -EPROTO);
	client_close(c);
}

static void inflating_reply_is_refused(void **state)
{
	(void)state;
	mode = FAKE_INFLATE;
	struct client *c;
	char err[256];
	assert_int_equal(connect_fake(NULL, &c, err, sizeof(err)), 0);
	/* Within the frame limit, but it would unpack to 28 MiB. */
	assert_int_equal(ask_status(c, err, sizeof(err)), -EPROTO);
	client_close(c);
}

/* --- (c) nothing raw reaches the terminal ------------------------------- */

static void status_text_is_escaped(void **state)
{
	(void)state;
	mode = FAKE_INJECT;
	char out[8192];
	assert_int_equal(run_capture(out, sizeof(out), SPILLCTL_PATH, "--server", fake_url,
				     "status", NULL), 0);
	assert_terminal_safe(out);
	assert_contains(out, EVIL_ID_TEXT);
	assert_contains(out, EVIL_VER_TEXT);
}

static void status_json_is_escaped(void **state)
{
	(void)state;
	mode = FAKE_INJECT;
	char out[8192];
	assert_int_equal(run_capture(out, sizeof(out), SPILLCTL_PATH, "--server", fake_url,
				     "--json", "status", NULL), 0);
	/* One line of JSON: the only raw control byte is its final newline. */
	assert_non_null(strchr(out, '\n'));
	assert_string_equal(strchr(out, '\n'), "\n");
	assert_terminal_safe(out);
	assert_contains(out, EVIL_ID_JSON);
	assert_contains(out, EVIL_VER_JSON);
}

static void export_list_is_escaped(void **state)
{
	(void)state;
	mode = FAKE_INJECT;
	char out[8192];
	assert_int_equal(run_capture(out, sizeof(out), SPILLCTL_PATH, "--server", fake_url,
				     "export", "list", NULL), 0);
	assert_terminal_safe(out);
	assert_contains(out, "disk\\x1b[8m");
	assert_int_equal(run_capture(out, sizeof(out), SPILLCTL_PATH, "--server", fake_url,
				     "--json", "export", "list", NULL), 0);
	assert_terminal_safe(out);
	assert_contains(out, "\"name\":\"disk\\u001b[8m\"");
	assert_contains(out, "\"client\":\"ev\\\"il\\\\\\u001b]0;pwned");
}

static void error_text_is_escaped(void **state)
{
	(void)state;
	mode = FAKE_INJECT_ERROR;
	char out[8192];
	assert_int_equal(run_capture(out, sizeof(out), SPILLCTL_PATH, "--server", fake_url,
				     "status", NULL), 1);
	assert_string_equal(out, "");
	assert_terminal_safe(run_stderr);
	assert_non_null(strstr(run_stderr, "refused?[31m red"));
	/* The core client hands out the same text to every caller. */
	struct client *c;
	char err[256];
	assert_int_equal(connect_fake(NULL, &c, err, sizeof(err)), 0);
	assert_int_equal(ask_status(c, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "refused?[31m red");
	client_close(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(keyed_client_refuses_server_without_auth),
		cmocka_unit_test(spillctl_with_key_refuses_server_without_auth),
		cmocka_unit_test(keyed_client_refuses_server_with_another_key),
		cmocka_unit_test(spillctl_with_key_refuses_real_keyless_server),
		cmocka_unit_test(unsolicited_flood_breaks_the_connection),
		cmocka_unit_test(duplicate_reply_breaks_the_connection),
		cmocka_unit_test(inflating_reply_is_refused),
		cmocka_unit_test(status_text_is_escaped),
		cmocka_unit_test(status_json_is_escaped),
		cmocka_unit_test(export_list_is_escaped),
		cmocka_unit_test(error_text_is_escaped),
	};
	return cmocka_run_group_tests(tests, fake_start, fake_stop);
}
