/* SPDX-License-Identifier: MIT */
/*
 * Bad NBD input, spoken byte by byte: a broken handshake ends only that
 * connection; unsupported options get NBD_REP_ERR_UNSUP with their payload
 * drained; requests out of bounds, too large, with unknown flags or an
 * unknown command get the spec's error and the connection carries on; a bad
 * request magic closes it. Through all of it the server keeps serving and
 * exits 0 on SIGTERM. Also the flags and config sections that set NBD up.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/socket.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "harness.h"
#include "nbd_raw.h"
#include "nbd_util.h"

static void still_serves(const struct srv *s)
{
	int fd = greet(nbd_port_of(s), 3);
	assert_int_equal(go(fd, "d"), 8u << 20);
	uint8_t b[4096];
	request(fd, 0, 0, 99, 4096, sizeof(b));
	assert_int_equal(reply(fd, 99, b, sizeof(b)), 0);
	request(fd, 0, 2, 100, 0, 0); /* DISC */
	assert_true(closed(fd));
	close(fd);
}

static void start(struct srv *s)
{
	assert_int_equal(nbd_srv_start(s, "32M", NULL, NULL), 0);
	char out[4096];
	assert_int_equal(run_capture(out, sizeof(out), SPILLCTL_PATH, "--server", s->admin_url, "export",
				     "create", "d", "--size", "8M", NULL), 0);
}

static void broken_handshakes_close_only_that_connection(void **state)
{
	(void)state;
	struct srv s = { 0 };
	start(&s);
	int port = nbd_port_of(&s);
	/* Connect and leave at once. */
	close(dial(port));
	/* Old-style (not fixed newstyle) client flags, and unknown flags. */
	int fd = greet(port, 0);
	assert_true(closed(fd));
	close(fd);
	fd = greet(port, 3 | 0x100);
	assert_true(closed(fd));
	close(fd);
	/* A bad option magic. */
	fd = greet(port, 3);
	sendall(fd, "GARBAGE!GARBAGE!", 16);
	assert_true(closed(fd));
	close(fd);
	/* EXPORT_NAME of an unknown export: the spec says close. */
	fd = greet(port, 3);
	send_opt(fd, 1, "nope", 4);
	assert_true(closed(fd));
	close(fd);
	/* Half an option header, then gone. */
	fd = greet(port, 3);
	sendall(fd, "IHAV", 4);
	close(fd);
	still_serves(&s);
	assert_true(srv_log_has(&s, "bad option magic"));
	assert_int_equal(srv_stop(&s), 0);
}

static void options_get_errors_and_the_handshake_goes_on(void **state)
{
	(void)state;
	struct srv s = { 0 };
	start(&s);
	int fd = greet(nbd_port_of(&s), 3);
	uint8_t r[512];
	uint32_t len;
	/* STRUCTURED_REPLY (8) and STARTTLS (5): unsupported, payload drained. */
	send_opt(fd, 8, "xyzzy", 5);
	assert_int_equal(opt_reply(fd, 8, r, sizeof(r), &len), 0x80000001u);
	send_opt(fd, 5, NULL, 0);
	assert_int_equal(opt_reply(fd, 5, r, sizeof(r), &len), 0x80000001u);
	send_opt(fd, 12345, "0123456789", 10);
	assert_int_equal(opt_reply(fd, 12345, r, sizeof(r), &len), 0x80000001u);
	/* LIST with a payload is invalid; without, one server entry and ACK. */
	send_opt(fd, 3, "x", 1);
	assert_int_equal(opt_reply(fd, 3, r, sizeof(r), &len), 0x80000003u);
	send_opt(fd, 3, NULL, 0);
	assert_int_equal(opt_reply(fd, 3, r, sizeof(r), &len), 2);
	assert_int_equal(get32(r), 1);
	assert_int_equal(r[4], 'd');
	assert_int_equal(opt_reply(fd, 3, r, sizeof(r), &len), 1);
	/* INFO/GO: malformed, then an unknown name. */
	uint8_t bad[6] = { 0, 0, 0, 9, 0, 0 };
	send_opt(fd, 6, bad, sizeof(bad));
	assert_int_equal(opt_reply(fd, 6, r, sizeof(r), &len), 0x80000003u);
	uint8_t unk[9] = { 0, 0, 0, 3, 'z', 'z', 'z', 0, 0 };
	send_opt(fd, 7, unk, sizeof(unk));
	assert_int_equal(opt_reply(fd, 7, r, sizeof(r), &len), 0x80000006u);
	/* A huge option length is drained and refused as too big. */
	uint8_t *big = calloc(1, 70000);
	send_opt(fd, 9, big, 70000);
	free(big);
	assert_int_equal(opt_reply(fd, 9, r, sizeof(r), &len), 0x80000009u);
	/* And GO still works on the same connection. */
	assert_int_equal(go(fd, "d"), 8u << 20);
	request(fd, 0, 3, 1, 0, 0); /* FLUSH */
	assert_int_equal(reply(fd, 1, NULL, 0), 0);
	close(fd);
	/* ABORT is acknowledged and the connection closed. */
	fd = greet(nbd_port_of(&s), 3);
	send_opt(fd, 2, NULL, 0);
	assert_int_equal(opt_reply(fd, 2, r, sizeof(r), &len), 1);
	assert_true(closed(fd));
	close(fd);
	assert_int_equal(srv_stop(&s), 0);
}

static void bad_requests_get_errors_and_the_connection_goes_on(void **state)
{
	(void)state;
	struct srv s = { 0 };
	start(&s);
	int fd = greet(nbd_port_of(&s), 3);
	uint64_t size = go(fd, "d");
	static uint8_t buf[1 << 20];
	memset(buf, 0x5a, 8192);
	/* A good write to check against later. */
	request(fd, 0, 1, 1, 4096, 8192);
	sendall(fd, buf, 8192);
	assert_int_equal(reply(fd, 1, NULL, 0), 0);
	/* Reads past the end or across it: EINVAL. */
	request(fd, 0, 0, 2, size, 4096);
	assert_int_equal(reply(fd, 2, NULL, 0), 22);
	request(fd, 0, 0, 3, size - 512, 4096);
	assert_int_equal(reply(fd, 3, NULL, 0), 22);
	request(fd, 0, 0, 4, UINT64_MAX - 10, 4096);
	assert_int_equal(reply(fd, 4, NULL, 0), 22);
	/* Writes past the end: ENOSPC, the payload read and dropped. */
	request(fd, 0, 1, 5, size - 4096, 8192);
	sendall(fd, buf, 8192);
	assert_int_equal(reply(fd, 5, NULL, 0), 28);
	/* Too large: a 64 MiB read, and a 33 MiB write (drained). */
	request(fd, 0, 0, 6, 0, 64u << 20);
	assert_int_equal(reply(fd, 6, NULL, 0), 22);
	request(fd, 0, 1, 7, 0, 33u << 20);
	for (int i = 0; i < 33; i++)
		sendall(fd, buf, 1 << 20);
	assert_int_equal(reply(fd, 7, NULL, 0), 22);
	/* Unknown command, unknown flag, TRIM and WRITE_ZEROES out of bounds. */
	request(fd, 0, 42, 8, 0, 4096);
	assert_int_equal(reply(fd, 8, NULL, 0), 22);
	request(fd, 0x8000, 0, 9, 0, 4096);
	assert_int_equal(reply(fd, 9, NULL, 0), 22);
	request(fd, 0, 4, 10, size, 4096);
	assert_int_equal(reply(fd, 10, NULL, 0), 22);
	request(fd, 0, 6, 11, size - 4096, 8192);
	assert_int_equal(reply(fd, 11, NULL, 0), 28);
	/* Pipelined: three requests, then their replies. */
	request(fd, 0, 0, 12, 4096, 8192);
	request(fd, 0, 0, 13, 0, 4096);
	request(fd, 0, 3, 14, 0, 0);
	uint8_t got[8192];
	assert_int_equal(reply(fd, 12, got, sizeof(got)), 0);
	assert_memory_equal(got, buf, sizeof(got));
	assert_int_equal(reply(fd, 13, got, 4096), 0);
	for (int i = 0; i < 4096; i++)
		assert_int_equal(got[i], 0);
	assert_int_equal(reply(fd, 14, NULL, 0), 0);
	/* A bad request magic ends it. */
	sendall(fd, "0123456789012345678901234567", 28);
	assert_true(closed(fd));
	close(fd);
	still_serves(&s);
	/* Deleting an export with a connection attached is refused. */
	fd = greet(nbd_port_of(&s), 3);
	go(fd, "d");
	char out[4096];
	assert_int_equal(run_capture(out, sizeof(out), SPILLCTL_PATH, "--server", s.admin_url, "export",
				     "delete", "d", NULL), 1);
	assert_non_null(strstr(run_stderr, "connections attached"));
	/* SIGTERM with a connection open: it is closed, the server exits 0. */
	assert_int_equal(srv_stop(&s), 0);
	assert_true(closed(fd));
	close(fd);
}

static void nbd_flags_are_checked(void **state)
{
	(void)state;
	struct srv s = { 0 };
	/* No export admin without --nbd; a non-loopback NBD address is refused. */
	assert_int_equal(srv_start(&s, "--capacity", "8M", NULL), 0);
	char out[4096];
	assert_int_equal(run_capture(out, sizeof(out), SPILLCTL_PATH, "--server", s.admin_url, "export",
				     "create", "d", "--size", "8M", NULL), 1);
	assert_non_null(strstr(run_stderr, "--nbd"));
	assert_int_equal(run_capture(out, sizeof(out), SPILLCTL_PATH, "--server", s.admin_url, "export",
				     "create", "d", "--size", "1000", NULL), 2);
	assert_int_equal(srv_stop(&s), 0);
	assert_int_equal(run_capture(out, sizeof(out), SPILLWAYD_PATH, "--capacity", "8M",
				     "--metrics", "none", "--listen", "127.0.0.1:0", "--nbd",
				     "0.0.0.0:0", NULL), 1);
	assert_non_null(strstr(run_stderr, "--nbd-insecure"));

	/* [export NAME] sections in --config: made at start-up. */
	srv_write_config(&s, "nbd = 127.0.0.1:0\n[client cfgc]\nlimit = 4M\n"
			     "[export cfg]\nsize = 1M\nclient = cfgc\n");
	assert_int_equal(srv_start(&s, "--capacity", "8M", "--config", s.config_path, NULL), 0);
	assert_true(nbd_port_of(&s) > 0);
	assert_int_equal(run_capture(out, sizeof(out), SPILLCTL_PATH, "--server", s.admin_url, "--json",
				     "export", "list", NULL), 0);
	assert_non_null(strstr(out, "\"name\":\"cfg\",\"size_bytes\":1048576,\"client\":\"cfgc\""));
	assert_int_equal(srv_stop(&s), 0);
	/* A section without a size is a usage error; exports without --nbd fail. */
	srv_write_config(&s, "nbd = 127.0.0.1:0\n[export bad]\nclient = x\n");
	assert_int_equal(run_capture(out, sizeof(out), SPILLWAYD_PATH, "--config", s.config_path,
				     NULL), 2);
	assert_non_null(strstr(run_stderr, "needs a size"));
	srv_write_config(&s, "[export lone]\nsize = 1M\n");
	assert_int_equal(run_capture(out, sizeof(out), SPILLWAYD_PATH, "--config", s.config_path,
				     "--capacity", "8M", "--metrics", "none", "--listen",
				     "127.0.0.1:0", NULL), 1);
	assert_non_null(strstr(run_stderr, "need --nbd"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(broken_handshakes_close_only_that_connection),
		cmocka_unit_test(options_get_errors_and_the_handshake_goes_on),
		cmocka_unit_test(bad_requests_get_errors_and_the_connection_goes_on),
		cmocka_unit_test(nbd_flags_are_checked),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
