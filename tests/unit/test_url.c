/* SPDX-License-Identifier: MIT */
/* Endpoint URLs: parsing, defaults, rejections, and formatting back. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "url.h"

static void expect_url(const char *text, int def, const char *scheme, const char *host,
		       int port)
{
	struct url u;
	memset(&u, 0xcc, sizeof(u));
	int rc = url_parse(text, def, &u);
	if (rc)
		fail_msg("\"%s\" rejected (%d)", text, rc);
	assert_string_equal(u.scheme, scheme);
	assert_string_equal(u.host, host);
	assert_int_equal(u.port, port);
}

static void expect_bad(const char *text)
{
	struct url u;
	int rc = url_parse(text, URL_DEFAULT_PORT, &u);
	if (rc != -EINVAL)
		fail_msg("\"%s\" gave %d (host \"%s\" port %d), want -EINVAL", text, rc, u.host,
			 u.port);
}

static void test_parse_ok(void **state)
{
	(void)state;
	expect_url("tcp://h:1", URL_DEFAULT_PORT, "tcp", "h", 1);
	expect_url("h:1", URL_DEFAULT_PORT, "tcp", "h", 1);
	expect_url("rdma://h:2", URL_DEFAULT_PORT, "rdma", "h", 2);
	expect_url("tcp://127.0.0.1:7707", 0, "tcp", "127.0.0.1", 7707);
	expect_url("rdma://10.0.0.5:18515", 0, "rdma", "10.0.0.5", 18515);
	expect_url("mem-node-3.example.com:9000", 0, "tcp", "mem-node-3.example.com", 9000);
	/* IPv6 in brackets; the brackets are not part of the host. */
	expect_url("[::1]:7707", 0, "tcp", "::1", 7707);
	expect_url("tcp://[fe80::1%eth0]:80", 0, "tcp", "fe80::1%eth0", 80);
	expect_url("rdma://[2001:db8::42]:4791", 0, "rdma", "2001:db8::42", 4791);
	/* Missing port: the caller's default. */
	expect_url("h", URL_DEFAULT_PORT, "tcp", "h", URL_DEFAULT_PORT);
	expect_url("tcp://h", 1234, "tcp", "h", 1234);
	expect_url("rdma://h", 4791, "rdma", "h", 4791);
	expect_url("[::1]", 99, "tcp", "::1", 99);
	/* Port range ends; 0 means "any" for listeners. */
	expect_url("h:0", 7, "tcp", "h", 0);
	expect_url("h:65535", 7, "tcp", "h", 65535);
	/* The longest host that fits. */
	char text[URL_HOST_MAX + 16], host[URL_HOST_MAX];
	memset(host, 'a', URL_HOST_MAX - 1);
	host[URL_HOST_MAX - 1] = '\0';
	snprintf(text, sizeof(text), "tcp://%s:5", host);
	expect_url(text, 0, "tcp", host, 5);
}

static void test_parse_bad(void **state)
{
	(void)state;
	/* Schemes. */
	expect_bad("udp://h:1");
	expect_bad("http://h:1");
	expect_bad("TCP://h:1");
	expect_bad("://h:1");
	expect_bad("tcpxxxxxx://h:1");
	/* Bare IPv6. */
	expect_bad("::1");
	expect_bad("::1:7707");
	expect_bad("tcp://fe80::1:80");
	/* Ports. */
	expect_bad("h:70000");
	expect_bad("h:65536");
	expect_bad("h:-1");
	expect_bad("h:");
	expect_bad("h:x");
	expect_bad("h:80x");
	expect_bad("h:80/path");
	expect_bad("[::1]:");
	expect_bad("[::1]:99999");
	/* Hosts. */
	expect_bad("");
	expect_bad(":1");
	expect_bad("tcp://");
	expect_bad("tcp://:1");
	expect_bad("rdma://:1");
	expect_bad("[]:1");
	expect_bad("[::1");
	expect_bad("[::1]x");
	expect_bad("[::1]7707");
	/* A bracket inside a host could not be formatted back (fuzz_url). */
	expect_bad("[[(]");
	expect_bad("tcp://[[::1]:5");
	expect_bad("a]b:5");
	expect_bad("a[b");
	char text[URL_HOST_MAX + 16];
	memset(text, 'a', URL_HOST_MAX);
	strcpy(text + URL_HOST_MAX, ":5");
	expect_bad(text);
}

/* A failed parse must not leave a half-filled struct that looks valid. */
static void test_parse_bad_clears(void **state)
{
	(void)state;
	struct url u;
	assert_int_equal(url_parse("rdma://good:1", 0, &u), 0);
	assert_int_equal(url_parse("udp://x:2", 0, &u), -EINVAL);
	assert_string_not_equal(u.host, "good");
}

static void expect_format(const struct url *u, const char *want)
{
	char buf[URL_HOST_MAX + 32];
	memset(buf, 'z', sizeof(buf));
	url_format(u, buf, (int)sizeof(buf));
	assert_string_equal(buf, want);
}

static void test_format(void **state)
{
	(void)state;
	struct url u = { .scheme = "tcp", .host = "127.0.0.1", .port = 7707 };
	expect_format(&u, "tcp://127.0.0.1:7707");
	u = (struct url){ .scheme = "rdma", .host = "::1", .port = 1 };
	expect_format(&u, "rdma://[::1]:1");
	u = (struct url){ .scheme = "tcp", .host = "h", .port = 0 };
	expect_format(&u, "tcp://h:0");

	/* A short buffer truncates, terminated. */
	char small[8];
	u = (struct url){ .scheme = "tcp", .host = "example.com", .port = 7707 };
	url_format(&u, small, (int)sizeof(small));
	assert_string_equal(small, "tcp://e");
}

static void test_roundtrip(void **state)
{
	(void)state;
	static const char *const in[] = {
		"tcp://h:1",         "h:1",
		"rdma://h:2",        "[::1]:7707",
		"10.1.2.3",          "rdma://[2001:db8::1]",
		"tcp://host.example:65535", "[fe80::1%eth0]:0",
	};
	for (size_t i = 0; i < sizeof(in) / sizeof(in[0]); i++) {
		struct url a, b;
		char buf[URL_HOST_MAX + 32], buf2[URL_HOST_MAX + 32];
		assert_int_equal(url_parse(in[i], URL_DEFAULT_PORT, &a), 0);
		url_format(&a, buf, (int)sizeof(buf));
		/* Always the full form. */
		assert_non_null(strstr(buf, "://"));
		if (url_parse(buf, 1, &b))
			fail_msg("\"%s\" formatted as \"%s\", which does not parse", in[i], buf);
		assert_string_equal(a.scheme, b.scheme);
		assert_string_equal(a.host, b.host);
		assert_int_equal(a.port, b.port);
		url_format(&b, buf2, (int)sizeof(buf2));
		assert_string_equal(buf, buf2);
	}
}

/* unix:///PATH: a local socket; the path is all of it, absolute, short
 * enough for sun_path, with no options. */
static void test_unix(void **state)
{
	(void)state;
	struct url u;
	assert_int_equal(url_parse("unix:///run/spillway/spillwayd.sock", 7, &u), 0);
	assert_string_equal(u.scheme, "unix");
	assert_string_equal(u.host, "/run/spillway/spillwayd.sock");
	assert_int_equal(u.port, 0);
	expect_format(&u, "unix:///run/spillway/spillwayd.sock");
	/* '?' and ':' are path characters here. */
	assert_int_equal(url_parse("unix:///tmp/a:b?c", 7, &u), 0);
	assert_string_equal(u.host, "/tmp/a:b?c");
	expect_bad("unix://relative.sock");
	expect_bad("unix://");
	char text[URL_UNIX_PATH_MAX + 16] = "unix:///";
	memset(text + 8, 'a', URL_UNIX_PATH_MAX - 1);
	text[8 + URL_UNIX_PATH_MAX - 1] = '\0'; /* path of 108 bytes: no room for the NUL */
	expect_bad(text);
	text[8 + URL_UNIX_PATH_MAX - 2] = '\0';
	assert_int_equal(url_parse(text, 0, &u), 0);
}

static void test_options(void **state)
{
	(void)state;
	struct url u;
	assert_int_equal(url_parse("tcp://h:1", 0, &u), 0);
	assert_int_equal(u.node, -1);
	assert_string_equal(u.fallback, "");
	assert_int_equal(url_parse("rdma://10.0.0.1:7410?node=1", 0, &u), 0);
	assert_int_equal(u.node, 1);
	assert_int_equal(u.port, 7410);
	assert_string_equal(u.host, "10.0.0.1");
	assert_int_equal(url_parse("rdma://[::1]:2?fallback=tcp://[::1]:3&node=0", 0, &u), 0);
	assert_string_equal(u.fallback, "tcp://[::1]:3");
	assert_string_equal(u.host, "::1");
	assert_int_equal(u.node, 0);
	assert_int_equal(url_parse("rdma://h?fallback=h2:9", 7, &u), 0);
	assert_int_equal(u.port, 7);
	assert_string_equal(u.source, "");
	assert_int_equal(url_parse("rdma://10.77.0.1:7471?source=10.77.0.2&fallback=tcp://h:2", 0, &u), 0);
	assert_string_equal(u.source, "10.77.0.2");
	assert_string_equal(u.fallback, "tcp://h:2");
	assert_int_equal(url_parse("rdma://[fe80::1]:1?source=fe80::2", 0, &u), 0);
	assert_string_equal(u.source, "fe80::2");

	static const char *const bad[] = {
		"tcp://h:1?",            "tcp://h:1?node",     "tcp://h:1?node=",
		"tcp://h:1?node=x",      "tcp://h:1?node=-1",  "tcp://h:1?node=1&",
		"tcp://h:1?colour=red",  "rdma://h:1?fallback=rdma://h:2",
		"rdma://h:1?fallback=",  "rdma://h:1?fallback=tcp://h:2?node=1",
		"tcp://h:1?node=99999999999", "tcp://h:1?source=10.0.0.1",
		"rdma://h:1?source=",    "rdma://h:1?source=[::1]", "rdma://h:1?source=tcp://x",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (url_parse(bad[i], 0, &u) != -EINVAL)
			fail_msg("\"%s\" parsed", bad[i]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_ok),
		cmocka_unit_test(test_parse_bad),
		cmocka_unit_test(test_parse_bad_clears),
		cmocka_unit_test(test_format),
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_unix),
		cmocka_unit_test(test_options),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
