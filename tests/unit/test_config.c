/* SPDX-License-Identifier: MIT */
/* Config text: sizes, bounded integers, size rendering, the config file. */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"

/* ---- sizes -------------------------------------------------------------- */

static void expect_size(const char *text, uint64_t want)
{
	uint64_t v = 0xdeadbeef;
	int rc = config_parse_size(text, &v);
	if (rc)
		fail_msg("\"%s\" rejected (%d)", text, rc);
	if (v != want)
		fail_msg("\"%s\" -> %llu, want %llu", text, (unsigned long long)v,
			 (unsigned long long)want);
}

static void expect_bad_size(const char *text)
{
	uint64_t v = 0xdeadbeef;
	int rc = config_parse_size(text, &v);
	if (rc != -EINVAL)
		fail_msg("\"%s\" gave %d (value %llu), want -EINVAL", text ? text : "(null)",
			 rc, (unsigned long long)v);
	/* The output is left alone on failure. */
	assert_true(v == 0xdeadbeef);
}

static void test_parse_size(void **state)
{
	(void)state;
	const uint64_t K = 1024, M = K * K, G = M * K, T = G * K;
	expect_size("0", 0);
	expect_size("1", 1);
	expect_size("4096", 4096);
	expect_size("4K", 4 * K);
	expect_size("4k", 4 * K);
	expect_size("2M", 2 * M);
	expect_size("1G", G);
	expect_size("1GiB", G);
	expect_size("1GB", G);
	expect_size("512MiB", 512 * M);
	expect_size("1T", T);
	expect_size("3t", 3 * T);
	expect_size("16777215T", 16777215 * T); /* the largest T that fits */
	expect_size("18446744073709551615", UINT64_MAX);
	expect_size("007K", 7 * K);

	expect_bad_size("");
	expect_bad_size(NULL);
	expect_bad_size("G");
	expect_bad_size("K1");
	expect_bad_size("1X");
	expect_bad_size("1P");
	expect_bad_size("-1");
	expect_bad_size("+1");
	expect_bad_size(" 1");
	expect_bad_size("1 ");
	expect_bad_size("1 G");
	expect_bad_size("1.5G");
	expect_bad_size("1GG");
	expect_bad_size("1Gi");
	expect_bad_size("1Gib");
	expect_bad_size("1Gb");
	expect_bad_size("1iB");  /* "iB" needs a unit before it */
	expect_bad_size("1B");
	expect_bad_size("0x10");
	expect_bad_size("99999999999T");
	expect_bad_size("16777216T");
	expect_bad_size("17179869184G");
	expect_bad_size("18446744073709551616");
	expect_bad_size("99999999999999999999999");
}

static void test_parse_int(void **state)
{
	(void)state;
	long v;
	assert_int_equal(config_parse_int("5", 0, 10, &v), 0);
	assert_int_equal(v, 5);
	assert_int_equal(config_parse_int("0", 0, 10, &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(config_parse_int("10", 0, 10, &v), 0);
	assert_int_equal(v, 10);
	assert_int_equal(config_parse_int("-1000", -1000, 1000, &v), 0);
	assert_int_equal(v, -1000);
	assert_int_equal(config_parse_int("1000", -1000, 1000, &v), 0);
	assert_int_equal(v, 1000);

	v = 77;
	assert_int_equal(config_parse_int("-1", 0, 10, &v), -EINVAL);
	assert_int_equal(config_parse_int("11", 0, 10, &v), -EINVAL);
	assert_int_equal(config_parse_int("-1001", -1000, 1000, &v), -EINVAL);
	assert_int_equal(config_parse_int("1001", -1000, 1000, &v), -EINVAL);
	assert_int_equal(config_parse_int("", 0, 10, &v), -EINVAL);
	assert_int_equal(config_parse_int(NULL, 0, 10, &v), -EINVAL);
	assert_int_equal(config_parse_int("5x", 0, 10, &v), -EINVAL);
	assert_int_equal(config_parse_int("5 ", 0, 10, &v), -EINVAL);
	assert_int_equal(config_parse_int("x5", 0, 10, &v), -EINVAL);
	assert_int_equal(config_parse_int("1.0", 0, 10, &v), -EINVAL);
	assert_int_equal(config_parse_int("1K", 0, 10000, &v), -EINVAL);
	assert_int_equal(config_parse_int("99999999999999999999", LONG_MIN, LONG_MAX, &v),
			 -EINVAL);
	assert_int_equal(config_parse_int("-99999999999999999999", LONG_MIN, LONG_MAX, &v),
			 -EINVAL);
	/* Failures leave the output alone. */
	assert_int_equal(v, 77);

	char buf[32];
	snprintf(buf, sizeof(buf), "%ld", LONG_MAX);
	assert_int_equal(config_parse_int(buf, LONG_MIN, LONG_MAX, &v), 0);
	assert_true(v == LONG_MAX);
	snprintf(buf, sizeof(buf), "%ld", LONG_MIN);
	assert_int_equal(config_parse_int(buf, LONG_MIN, LONG_MAX, &v), 0);
	assert_true(v == LONG_MIN);
	/* An empty range admits only its one value. */
	assert_int_equal(config_parse_int("3", 3, 3, &v), 0);
	assert_int_equal(config_parse_int("4", 3, 3, &v), -EINVAL);
}

static void expect_format(uint64_t bytes, const char *want)
{
	char buf[32];
	memset(buf, 'z', sizeof(buf));
	config_format_size(bytes, buf, sizeof(buf));
	assert_string_equal(buf, want);
}

static void test_format_size(void **state)
{
	(void)state;
	const uint64_t K = 1024, M = K * K, G = M * K, T = G * K;
	expect_format(0, "0");
	expect_format(1, "1");
	expect_format(1023, "1023");
	expect_format(K, "1K");
	expect_format(K + 1, "1025");
	expect_format(1536, "1536");
	expect_format(4 * K, "4K");
	expect_format(2 * M, "2M");
	expect_format(1536 * K, "1536K");
	expect_format(G, "1G");
	expect_format(3 * G, "3G");
	expect_format(T, "1T");
	expect_format(1024 * T, "1024T"); /* no unit above T */
	expect_format(UINT64_MAX, "18446744073709551615");

	/* What it prints parses back to the same value. */
	const uint64_t vals[] = { 0, 1, 4095, 4096, 1536 * K, 7 * M, 5 * G + 4 * K,
				  12 * T, 1024 * T, UINT64_MAX };
	for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
		char buf[32];
		uint64_t back;
		config_format_size(vals[i], buf, sizeof(buf));
		assert_int_equal(config_parse_size(buf, &back), 0);
		assert_true(back == vals[i]);
	}

	/* A short buffer truncates but stays terminated. */
	char small[3] = { 'x', 'x', 'x' };
	config_format_size(4096 * K, small, sizeof(small));
	assert_string_equal(small, "4M");
	config_format_size(123456, small, sizeof(small));
	assert_string_equal(small, "12");
}

/* ---- config file -------------------------------------------------------- */

#define MAX_ENTRIES 16

struct entry {
	char section[128], key[256], value[1024];
};

struct collect {
	struct entry e[MAX_ENTRIES];
	int n;
	int fail_at;         /* 1-based entry to fail on, 0 = never */
	int fail_rc;
	const char *fail_why;
};

static int collect_cb(void *arg, const char *section, const char *key, const char *value,
		      const char **why)
{
	struct collect *c = arg;
	assert_non_null(section);
	assert_non_null(key);
	assert_non_null(value);
	assert_true(c->n < MAX_ENTRIES);
	struct entry *e = &c->e[c->n++];
	snprintf(e->section, sizeof(e->section), "%s", section);
	snprintf(e->key, sizeof(e->key), "%s", key);
	snprintf(e->value, sizeof(e->value), "%s", value);
	if (c->fail_at == c->n) {
		*why = c->fail_why;
		return c->fail_rc;
	}
	return 0;
}

/* Write text to a fresh temp file; returns its path (static buffer). */
static char tmp_path[64];

static const char *write_tmp(const char *text, size_t len)
{
	snprintf(tmp_path, sizeof(tmp_path), "/tmp/spillway-test-config-XXXXXX");
	int fd = mkstemp(tmp_path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	close(fd);
	return tmp_path;
}

static int parse_text(const char *text, struct collect *c, char *err, size_t cap)
{
	const char *path = write_tmp(text, strlen(text));
	int rc = config_parse_file(path, collect_cb, c, err, cap);
	unlink(path);
	return rc;
}

static void assert_entry(const struct entry *e, const char *section, const char *key,
			 const char *value)
{
	assert_string_equal(e->section, section);
	assert_string_equal(e->key, key);
	assert_string_equal(e->value, value);
}

/* err must be "<tmp_path>:<line>: <why>". */
static void assert_err_at(const char *err, int line, const char *why)
{
	char want[256];
	snprintf(want, sizeof(want), "%s:%d: %s", tmp_path, line, why);
	assert_string_equal(err, want);
}

static void test_file_ok(void **state)
{
	(void)state;
	static const char text[] =
		"# spillwayd.conf\n"
		"\n"
		"   \t \n"
		"listen = tcp://0.0.0.0:7707\n"
		"  pool-size=4G   # trailing comment\n"
		"psk-file\t=\t/etc/spillway/psk  \n"
		"log-level =\n"
		"expr = a = b\n"
		"   # indented comment\n"
		"[client db1]\n"
		"priority = 100\n"
		"reservation = 1G\r\n"
		"[  client  spaced  ]   # comment after a section\n"
		"limit = 2G\n"
		"[]\n"
		"x = y\n"
		"last = no newline";
	struct collect c = { 0 };
	char err[256] = "";
	int rc = parse_text(text, &c, err, sizeof(err));
	if (rc)
		fail_msg("rc %d: %s", rc, err);
	assert_int_equal(c.n, 10);
	assert_entry(&c.e[0], "", "listen", "tcp://0.0.0.0:7707");
	assert_entry(&c.e[1], "", "pool-size", "4G");
	assert_entry(&c.e[2], "", "psk-file", "/etc/spillway/psk");
	assert_entry(&c.e[3], "", "log-level", "");
	assert_entry(&c.e[4], "", "expr", "a = b");
	assert_entry(&c.e[5], "client db1", "priority", "100");
	assert_entry(&c.e[6], "client db1", "reservation", "1G");
	assert_entry(&c.e[7], "client  spaced", "limit", "2G");
	assert_entry(&c.e[8], "", "x", "y");
	assert_entry(&c.e[9], "", "last", "no newline");
}

static void test_file_empty(void **state)
{
	(void)state;
	struct collect c = { 0 };
	char err[256] = "";
	assert_int_equal(parse_text("", &c, err, sizeof(err)), 0);
	assert_int_equal(c.n, 0);
	assert_int_equal(parse_text("# only\n\n  # comments\n", &c, err, sizeof(err)), 0);
	assert_int_equal(c.n, 0);
}

static void test_file_missing_equals(void **state)
{
	(void)state;
	struct collect c = { 0 };
	char err[256] = "";
	int rc = parse_text("a = 1\n# two\njust words\nb = 2\n", &c, err, sizeof(err));
	assert_int_equal(rc, -EINVAL);
	assert_err_at(err, 3, "expected key = value");
	/* Entries before the error were delivered, none after. */
	assert_int_equal(c.n, 1);
	assert_entry(&c.e[0], "", "a", "1");

	/* '=' only inside a comment does not count. */
	c.n = 0;
	rc = parse_text("key # = value\n", &c, err, sizeof(err));
	assert_int_equal(rc, -EINVAL);
	assert_err_at(err, 1, "expected key = value");
	assert_int_equal(c.n, 0);
}

static void test_file_bad_section(void **state)
{
	(void)state;
	static const char *const bad[] = {
		"[client db1\n",
		"[client db1] junk\n",
		"[client db1]]\n",
		"[client] = x\n",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct collect c = { 0 };
		char err[256] = "";
		char text[256];
		snprintf(text, sizeof(text), "a = 1\n\n%s", bad[i]);
		int rc = parse_text(text, &c, err, sizeof(err));
		if (rc != -EINVAL)
			fail_msg("\"%s\" gave %d", bad[i], rc);
		assert_err_at(err, 3, "malformed section header");
	}
	/* A section name that does not fit (127 characters is the most). */
	char text[400];
	struct collect c = { 0 };
	char err[256] = "";
	memset(text, 0, sizeof(text));
	text[0] = '[';
	memset(text + 1, 's', 127);
	strcpy(text + 128, "]\nk = v\n");
	assert_int_equal(parse_text(text, &c, err, sizeof(err)), 0);
	assert_int_equal(c.n, 1);
	assert_int_equal(strlen(c.e[0].section), 127);
	memset(text + 1, 's', 128);
	strcpy(text + 129, "]\nk = v\n");
	c.n = 0;
	assert_int_equal(parse_text(text, &c, err, sizeof(err)), -EINVAL);
	assert_err_at(err, 1, "malformed section header");
	assert_int_equal(c.n, 0);
}

static void test_file_long_line(void **state)
{
	(void)state;
	/* The line buffer is 1024 bytes: 1022 characters plus newline fit. */
	size_t n = 4000;
	char *text = malloc(n + 64);
	assert_non_null(text);
	strcpy(text, "a = 1\n");
	size_t off = strlen(text);
	text[off++] = 'k';
	text[off++] = '=';
	memset(text + off, 'v', 1020);
	off += 1020;
	strcpy(text + off, "\nb = 2\n");
	struct collect c = { 0 };
	char err[256] = "";
	int rc = parse_text(text, &c, err, sizeof(err));
	if (rc)
		fail_msg("a 1022-character line was refused: %s", err);
	assert_int_equal(c.n, 3);
	assert_int_equal(strlen(c.e[1].value), 1020);

	/* 3000 characters: an error on that line, nothing from it or after. */
	off = strlen("a = 1\n");
	text[off] = 'k';
	text[off + 1] = '=';
	memset(text + off + 2, 'v', 3000);
	strcpy(text + off + 3002, "\nb = 2\n");
	c.n = 0;
	rc = parse_text(text, &c, err, sizeof(err));
	assert_int_equal(rc, -EINVAL);
	assert_err_at(err, 2, "line too long");
	assert_int_equal(c.n, 1);

	/* Also when the long line is the last one and has no newline. */
	text[off + 3002] = '\0';
	c.n = 0;
	rc = parse_text(text, &c, err, sizeof(err));
	assert_int_equal(rc, -EINVAL);
	assert_err_at(err, 2, "line too long");
	free(text);
}

static void test_file_callback_error(void **state)
{
	(void)state;
	static const char text[] = "a = 1\n[client x]\nprio = high\nb = 2\n";
	struct collect c = { .fail_at = 2, .fail_rc = -ERANGE, .fail_why = "bad priority" };
	char err[256] = "";
	int rc = parse_text(text, &c, err, sizeof(err));
	assert_int_equal(rc, -ERANGE);
	assert_err_at(err, 3, "bad priority");
	assert_int_equal(c.n, 2); /* stopped at the failing entry */
	assert_entry(&c.e[1], "client x", "prio", "high");

	/* Without a reason, the errno text. */
	struct collect c2 = { .fail_at = 1, .fail_rc = -ENOENT, .fail_why = NULL };
	rc = parse_text(text, &c2, err, sizeof(err));
	assert_int_equal(rc, -ENOENT);
	assert_err_at(err, 1, strerror(ENOENT));
}

static void test_file_missing(void **state)
{
	(void)state;
	struct collect c = { 0 };
	char err[256] = "";
	const char *path = "/tmp/spillway-test-config-does-not-exist/x.conf";
	int rc = config_parse_file(path, collect_cb, &c, err, sizeof(err));
	assert_int_equal(rc, -ENOENT);
	assert_non_null(strstr(err, path));
	assert_int_equal(c.n, 0);

	/* A tiny error buffer is truncated, not overrun. */
	char tiny[8];
	memset(tiny, 'z', sizeof(tiny));
	rc = config_parse_file(path, collect_cb, &c, tiny, sizeof(tiny));
	assert_int_equal(rc, -ENOENT);
	assert_int_equal(strlen(tiny), sizeof(tiny) - 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_size),
		cmocka_unit_test(test_parse_int),
		cmocka_unit_test(test_format_size),
		cmocka_unit_test(test_file_ok),
		cmocka_unit_test(test_file_empty),
		cmocka_unit_test(test_file_missing_equals),
		cmocka_unit_test(test_file_bad_section),
		cmocka_unit_test(test_file_long_line),
		cmocka_unit_test(test_file_callback_error),
		cmocka_unit_test(test_file_missing),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
