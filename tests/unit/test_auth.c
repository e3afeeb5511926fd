/* SPDX-License-Identifier: MIT */
/* Pre-shared-key challenge/response and key-file loading. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "auth.h"

static struct auth_psk psk;
static uint8_t sn[AUTH_NONCE_BYTES], cn[AUTH_NONCE_BYTES];

/* Fixed inputs for the known-answer test: key 00..1f, server nonce a0..bf,
 * client nonce 40..5f. */
static void fixed_inputs(void)
{
	memset(&psk, 0, sizeof(psk));
	psk.len = 32;
	for (int i = 0; i < 32; i++) {
		psk.key[i] = (unsigned char)i;
		sn[i] = (uint8_t)(0xa0 + i);
		cn[i] = (uint8_t)(0x40 + i);
	}
}

static void hex(const char *s, uint8_t *out, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned v;
		assert_int_equal(sscanf(s + 2 * i, "%2x", &v), 1);
		out[i] = (uint8_t)v;
	}
}

/*
 * The MAC is HMAC-SHA256(psk, "spillway-auth-v1 <role>" || server_nonce ||
 * client_nonce) exactly: other implementations (the kernel client) must
 * interoperate. Values from an independent HMAC implementation.
 */
static void test_known_answer(void **state)
{
	(void)state;
	fixed_inputs();
	uint8_t want[AUTH_MAC_BYTES], got[AUTH_MAC_BYTES];
	hex("16c29b90f987b9eb261d7f53c85a34ebfe0e7143eae2e277e76526ccd2077da5", want, 32);
	auth_mac(&psk, AUTH_ROLE_CLIENT, sn, cn, got);
	assert_memory_equal(got, want, AUTH_MAC_BYTES);
	hex("7b66933fe39ced01dc7800d2ce02779ecfdc6d83c7f75f3630a1e176fab72ffa", want, 32);
	auth_mac(&psk, AUTH_ROLE_SERVER, sn, cn, got);
	assert_memory_equal(got, want, AUTH_MAC_BYTES);
}

static void random_inputs(void)
{
	memset(&psk, 0, sizeof(psk));
	psk.len = 40;
	assert_int_equal(auth_random(psk.key, psk.len), 0);
	assert_int_equal(auth_random(sn, sizeof(sn)), 0);
	assert_int_equal(auth_random(cn, sizeof(cn)), 0);
}

static void test_roles(void **state)
{
	(void)state;
	random_inputs();
	uint8_t cmac[AUTH_MAC_BYTES], smac[AUTH_MAC_BYTES];
	auth_mac(&psk, AUTH_ROLE_CLIENT, sn, cn, cmac);
	auth_mac(&psk, AUTH_ROLE_SERVER, sn, cn, smac);
	/* Each verifies for its own role only: a server cannot be fooled by
	 * its own MAC reflected back, nor a client by its own. */
	assert_int_equal(auth_check(&psk, AUTH_ROLE_CLIENT, sn, cn, cmac), 0);
	assert_int_equal(auth_check(&psk, AUTH_ROLE_SERVER, sn, cn, cmac), -EACCES);
	assert_int_equal(auth_check(&psk, AUTH_ROLE_SERVER, sn, cn, smac), 0);
	assert_int_equal(auth_check(&psk, AUTH_ROLE_CLIENT, sn, cn, smac), -EACCES);
	assert_memory_not_equal(cmac, smac, AUTH_MAC_BYTES);
	/* Deterministic. */
	uint8_t again[AUTH_MAC_BYTES];
	auth_mac(&psk, AUTH_ROLE_CLIENT, sn, cn, again);
	assert_memory_equal(again, cmac, AUTH_MAC_BYTES);
}

static void test_nonces_bind(void **state)
{
	(void)state;
	random_inputs();
	uint8_t mac[AUTH_MAC_BYTES];
	auth_mac(&psk, AUTH_ROLE_CLIENT, sn, cn, mac);
	/* Swapped nonces. */
	assert_int_equal(auth_check(&psk, AUTH_ROLE_CLIENT, cn, sn, mac), -EACCES);
	/* Any single bit of either nonce. */
	for (int i = 0; i < AUTH_NONCE_BYTES; i++)
		for (int bit = 0; bit < 8; bit++) {
			sn[i] ^= (uint8_t)(1u << bit);
			assert_int_equal(auth_check(&psk, AUTH_ROLE_CLIENT, sn, cn, mac), -EACCES);
			sn[i] ^= (uint8_t)(1u << bit);
			cn[i] ^= (uint8_t)(1u << bit);
			assert_int_equal(auth_check(&psk, AUTH_ROLE_CLIENT, sn, cn, mac), -EACCES);
			cn[i] ^= (uint8_t)(1u << bit);
		}
	assert_int_equal(auth_check(&psk, AUTH_ROLE_CLIENT, sn, cn, mac), 0);
	/* A fresh server nonce: the recorded answer no longer works (replay). */
	uint8_t sn2[AUTH_NONCE_BYTES];
	assert_int_equal(auth_random(sn2, sizeof(sn2)), 0);
	assert_int_equal(auth_check(&psk, AUTH_ROLE_CLIENT, sn2, cn, mac), -EACCES);
}

static void test_key_binds(void **state)
{
	(void)state;
	random_inputs();
	/* A key ending in a zero byte is the same HMAC key as its prefix (see
	 * below): one random key in 256 did, and the prefix check failed. */
	psk.key[psk.len - 1] |= 0x80;
	uint8_t mac[AUTH_MAC_BYTES];
	auth_mac(&psk, AUTH_ROLE_CLIENT, sn, cn, mac);
	struct auth_psk other = psk;
	for (size_t i = 0; i < psk.len; i++) {
		other.key[i] ^= 0x01;
		assert_int_equal(auth_check(&other, AUTH_ROLE_CLIENT, sn, cn, mac), -EACCES);
		other.key[i] ^= 0x01;
	}
	/* A prefix of the key, or the key with a byte more, is another key.
	 * (Not a zero byte more: HMAC zero-pads short keys, so K and K||00
	 * are the same HMAC key.) */
	other.len = psk.len - 1;
	assert_int_equal(auth_check(&other, AUTH_ROLE_CLIENT, sn, cn, mac), -EACCES);
	other.len = psk.len + 1;
	other.key[psk.len] = 'x';
	assert_int_equal(auth_check(&other, AUTH_ROLE_CLIENT, sn, cn, mac), -EACCES);
	other.len = psk.len;
	assert_int_equal(auth_check(&other, AUTH_ROLE_CLIENT, sn, cn, mac), 0);
}

static void test_mac_flip(void **state)
{
	(void)state;
	random_inputs();
	uint8_t mac[AUTH_MAC_BYTES];
	auth_mac(&psk, AUTH_ROLE_SERVER, sn, cn, mac);
	for (int i = 0; i < AUTH_MAC_BYTES; i++)
		for (int bit = 0; bit < 8; bit++) {
			mac[i] ^= (uint8_t)(1u << bit);
			assert_int_equal(auth_check(&psk, AUTH_ROLE_SERVER, sn, cn, mac), -EACCES);
			mac[i] ^= (uint8_t)(1u << bit);
		}
	assert_int_equal(auth_check(&psk, AUTH_ROLE_SERVER, sn, cn, mac), 0);
	uint8_t zero[AUTH_MAC_BYTES] = { 0 };
	assert_int_equal(auth_check(&psk, AUTH_ROLE_SERVER, sn, cn, zero), -EACCES);
}

static void test_random(void **state)
{
	(void)state;
	uint8_t a[32], b[32], z[32] = { 0 };
	assert_int_equal(auth_random(a, sizeof(a)), 0);
	assert_int_equal(auth_random(b, sizeof(b)), 0);
	assert_memory_not_equal(a, b, sizeof(a));
	assert_memory_not_equal(a, z, sizeof(a));
}

/* ---- key files ---------------------------------------------------------- */

static char path[64];

static void write_key(const void *data, size_t len, mode_t mode)
{
	snprintf(path, sizeof(path), "/tmp/spillway-test-psk-XXXXXX");
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	if (len)
		assert_int_equal(write(fd, data, len), (ssize_t)len);
	close(fd);
	assert_int_equal(chmod(path, mode), 0);
}

static int load(struct auth_psk *out)
{
	memset(out, 0xcc, sizeof(*out));
	int rc = auth_psk_load(path, out);
	unlink(path);
	return rc;
}

static void test_psk_load_ok(void **state)
{
	(void)state;
	struct auth_psk k;
	static const char key[] = "0123456789abcdef0123456789abcdef";
	write_key(key, 32, 0600);
	assert_int_equal(load(&k), 0);
	assert_int_equal(k.len, 32);
	assert_memory_equal(k.key, key, 32);

	/* One trailing newline is stripped... */
	write_key("0123456789abcdef0123456789abcdef\n", 33, 0600);
	assert_int_equal(load(&k), 0);
	assert_int_equal(k.len, 32);
	assert_memory_equal(k.key, key, 32);
	/* ...only one. */
	write_key("0123456789abcdef\n\n", 18, 0600);
	assert_int_equal(load(&k), 0);
	assert_int_equal(k.len, 17);
	assert_memory_equal(k.key, "0123456789abcdef\n", 17);

	/* Binary keys, NULs included, are taken as they are. */
	uint8_t bin[64];
	for (int i = 0; i < 64; i++)
		bin[i] = (uint8_t)(i * 37);
	bin[5] = 0;
	bin[63] = 0x0d;
	write_key(bin, sizeof(bin), 0400);
	assert_int_equal(load(&k), 0);
	assert_int_equal(k.len, 64);
	assert_memory_equal(k.key, bin, 64);

	/* The shortest accepted key, with and without its newline. */
	write_key("sixteen-bytes-ok", 16, 0600);
	assert_int_equal(load(&k), 0);
	assert_int_equal(k.len, 16);
	write_key("sixteen-bytes-ok\n", 17, 0600);
	assert_int_equal(load(&k), 0);
	assert_int_equal(k.len, 16);

	/* The longest. */
	uint8_t max[AUTH_PSK_MAX];
	memset(max, 'k', sizeof(max));
	write_key(max, sizeof(max), 0600);
	assert_int_equal(load(&k), 0);
	assert_int_equal(k.len, AUTH_PSK_MAX);

	/* A key loaded from a file authenticates like one built in memory. */
	write_key(key, 32, 0600);
	assert_int_equal(load(&k), 0);
	struct auth_psk mem = { .len = 32 };
	memcpy(mem.key, key, 32);
	uint8_t s[AUTH_NONCE_BYTES] = { 1 }, c[AUTH_NONCE_BYTES] = { 2 }, mac[AUTH_MAC_BYTES];
	auth_mac(&mem, AUTH_ROLE_CLIENT, s, c, mac);
	assert_int_equal(auth_check(&k, AUTH_ROLE_CLIENT, s, c, mac), 0);
}

static void test_psk_load_perms(void **state)
{
	(void)state;
	struct auth_psk k;
	static const char key[] = "0123456789abcdef0123456789abcdef";
	static const mode_t bad[] = { 0644, 0640, 0604, 0660, 0606, 0610, 0601, 0666, 0777 };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		write_key(key, 32, bad[i]);
		int rc = load(&k);
		if (rc != -EPERM)
			fail_msg("mode %04o: %d, want -EPERM", (unsigned)bad[i], rc);
	}
}

static void test_psk_load_bad(void **state)
{
	(void)state;
	struct auth_psk k;
	/* Too short, with or without newline. */
	write_key("fifteen-bytes!!", 15, 0600);
	assert_int_equal(load(&k), -EINVAL);
	write_key("fifteen-bytes!!\n", 16, 0600);
	assert_int_equal(load(&k), -EINVAL);
	write_key("", 0, 0600);
	assert_int_equal(load(&k), -EINVAL);
	write_key("\n", 1, 0600);
	assert_int_equal(load(&k), -EINVAL);
	/* Missing. */
	memset(&k, 0, sizeof(k));
	assert_int_equal(auth_psk_load("/tmp/spillway-test-psk-does-not-exist", &k), -ENOENT);
	/* Not a regular file. */
	char dir[] = "/tmp/spillway-test-pskdir-XXXXXX";
	assert_non_null(mkdtemp(dir));
	assert_int_equal(chmod(dir, 0700), 0);
	int rc = auth_psk_load(dir, &k);
	rmdir(dir);
	assert_int_equal(rc, -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_known_answer),
		cmocka_unit_test(test_roles),
		cmocka_unit_test(test_nonces_bind),
		cmocka_unit_test(test_key_binds),
		cmocka_unit_test(test_mac_flip),
		cmocka_unit_test(test_random),
		cmocka_unit_test(test_psk_load_ok),
		cmocka_unit_test(test_psk_load_perms),
		cmocka_unit_test(test_psk_load_bad),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
