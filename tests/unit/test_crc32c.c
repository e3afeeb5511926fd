/* SPDX-License-Identifier: MIT */
/*
 * CRC32C: published check values, continuation across split points, and
 * agreement with a bit-at-a-time reference over random data of many lengths
 * and alignments. Lengths above 12 KiB matter: there the hardware path runs
 * three 4 KiB streams per round and folds them with a shift table.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "test_rng.h"

#include "crc32c.h"

/* Bit-at-a-time CRC32C, the definition, with the same continuation rule. */
static uint32_t ref_crc32c(uint32_t crc, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	crc = ~crc;
	while (len--) {
		crc ^= *p++;
		for (int k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (0x82f63b78u & (0u - (crc & 1)));
	}
	return ~crc;
}



static uint8_t *random_buf(size_t n)
{
	uint8_t *p = malloc(n ? n : 1);
	assert_non_null(p);
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(rng() >> 40);
	return p;
}

#define KIB 1024u
#define STREAM_BLOCK (3u * 4u * KIB) /* one round of the 3-way hardware path */

static void test_known_vectors(void **state)
{
	(void)state;
	uint8_t buf[32];
	assert_int_equal(crc32c(0, "123456789", 9), 0xE3069283u);
	memset(buf, 0, sizeof(buf));
	assert_int_equal(crc32c(0, buf, sizeof(buf)), 0x8A9136AAu);
	memset(buf, 0xff, sizeof(buf));
	assert_int_equal(crc32c(0, buf, sizeof(buf)), 0x62A8AB43u);
	/* RFC 3720 B.4: 32 bytes ascending, 32 bytes descending. */
	for (int i = 0; i < 32; i++)
		buf[i] = (uint8_t)i;
	assert_int_equal(crc32c(0, buf, sizeof(buf)), 0x46DD794Eu);
	for (int i = 0; i < 32; i++)
		buf[i] = (uint8_t)(31 - i);
	assert_int_equal(crc32c(0, buf, sizeof(buf)), 0x113FDB5Cu);
	/* Nothing in, nothing changes. */
	assert_int_equal(crc32c(0, buf, 0), 0);
	assert_int_equal(crc32c(0x12345678u, buf, 0), 0x12345678u);
	/* The reference agrees on the published values (it is checked too). */
	assert_int_equal(ref_crc32c(0, "123456789", 9), 0xE3069283u);
}

/* Large zero and 0xff blocks: same inputs as the vectors, but on the
 * multi-stream path. */
static void test_large_constant_blocks(void **state)
{
	(void)state;
	static const size_t lens[] = { STREAM_BLOCK - 1, STREAM_BLOCK, STREAM_BLOCK + 1,
				       2 * STREAM_BLOCK, 2 * 1024 * KIB, 2 * 1024 * KIB + 64 };
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		uint8_t *p = malloc(lens[i]);
		assert_non_null(p);
		for (int fill = 0; fill < 2; fill++) {
			memset(p, fill ? 0xff : 0, lens[i]);
			uint32_t got = crc32c(0, p, lens[i]), want = ref_crc32c(0, p, lens[i]);
			if (got != want)
				fail_msg("len %zu fill 0x%02x: got %08x want %08x", lens[i],
					 fill ? 0xff : 0, got, want);
		}
		free(p);
	}
}

static void test_against_reference(void **state)
{
	(void)state;
	/* Every length to 300 at every alignment within a word... */
	uint8_t *buf = random_buf(300 + 8);
	for (size_t len = 0; len <= 300; len++)
		for (size_t off = 0; off < 8; off++) {
			uint32_t seed = (uint32_t)rng();
			if (crc32c(seed, buf + off, len) != ref_crc32c(seed, buf + off, len))
				fail_msg("len %zu off %zu seed %08x", len, off, seed);
			if (crc32c(0, buf + off, len) != ref_crc32c(0, buf + off, len))
				fail_msg("len %zu off %zu", len, off);
		}
	free(buf);

	/* ...then lengths around every boundary the implementation has. */
	static const size_t lens[] = {
		4095, 4096, 4097, 8191, 8192, 8193,
		STREAM_BLOCK - 9, STREAM_BLOCK - 8, STREAM_BLOCK - 1, STREAM_BLOCK,
		STREAM_BLOCK + 1, STREAM_BLOCK + 7, STREAM_BLOCK + 8, STREAM_BLOCK + 4096,
		2 * STREAM_BLOCK - 1, 2 * STREAM_BLOCK, 2 * STREAM_BLOCK + 3,
		3 * STREAM_BLOCK + 5, 100 * KIB, 1024 * KIB, 2 * 1024 * KIB,
		2 * 1024 * KIB + 64,
	};
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		uint8_t *p = random_buf(lens[i] + 8);
		for (size_t off = 0; off < 8; off += 3) {
			uint32_t seed = i & 1 ? (uint32_t)rng() : 0;
			uint32_t got = crc32c(seed, p + off, lens[i]);
			uint32_t want = ref_crc32c(seed, p + off, lens[i]);
			if (got != want)
				fail_msg("len %zu off %zu seed %08x: got %08x want %08x", lens[i],
					 off, seed, got, want);
		}
		free(p);
	}

	/* And random lengths up to 64 KiB. */
	for (int round = 0; round < 60; round++) {
		size_t len = (size_t)(rng() % (64 * KIB));
		size_t off = (size_t)(rng() % 8);
		uint8_t *p = random_buf(len + 8);
		if (crc32c(0, p + off, len) != ref_crc32c(0, p + off, len))
			fail_msg("random round %d: len %zu off %zu", round, len, off);
		free(p);
	}
}

static void test_incremental(void **state)
{
	(void)state;
	static const size_t lens[] = { 1, 2, 9, 64, 4096, STREAM_BLOCK, STREAM_BLOCK + 13,
				       40 * KIB, 2 * 1024 * KIB + 64 };
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		size_t len = lens[i];
		uint8_t *p = random_buf(len);
		uint32_t whole = crc32c(0, p, len);
		assert_int_equal(whole, ref_crc32c(0, p, len));

		size_t splits[64];
		size_t ns = 0;
		static const size_t fixed[] = { 0, 1, 7, 8, 9, 4095, 4096, 4097,
						STREAM_BLOCK - 1, STREAM_BLOCK,
						STREAM_BLOCK + 1, 2 * STREAM_BLOCK + 8 };
		for (size_t f = 0; f < sizeof(fixed) / sizeof(fixed[0]); f++)
			if (fixed[f] <= len)
				splits[ns++] = fixed[f];
		splits[ns++] = len / 2;
		splits[ns++] = len - 1;
		splits[ns++] = len;
		while (ns < 40)
			splits[ns++] = (size_t)(rng() % (len + 1));

		for (size_t s = 0; s < ns; s++) {
			size_t a = splits[s];
			uint32_t c = crc32c(crc32c(0, p, a), p + a, len - a);
			if (c != whole)
				fail_msg("len %zu split at %zu: %08x != %08x", len, a, c, whole);
		}
		/* Three pieces, and many small pieces. */
		for (int r = 0; r < 20; r++) {
			size_t a = (size_t)(rng() % (len + 1));
			size_t b = a + (size_t)(rng() % (len - a + 1));
			uint32_t c = crc32c(crc32c(crc32c(0, p, a), p + a, b - a), p + b, len - b);
			if (c != whole)
				fail_msg("len %zu split at %zu,%zu", len, a, b);
		}
		if (len <= 64 * KIB) {
			uint32_t c = 0;
			size_t off = 0;
			while (off < len) {
				size_t piece = 1 + (size_t)(rng() % 777);
				if (piece > len - off)
					piece = len - off;
				c = crc32c(c, p + off, piece);
				off += piece;
			}
			assert_int_equal(c, whole);
		}
		free(p);
	}
}

/* Same input, same CRC, every time; and one flipped bit is always seen. */
static void test_deterministic(void **state)
{
	(void)state;
	uint8_t *p = random_buf(50 * KIB);
	uint32_t a = crc32c(0, p, 50 * KIB);
	for (int i = 0; i < 5; i++)
		assert_int_equal(crc32c(0, p, 50 * KIB), a);
	/* A single flipped bit anywhere changes the CRC. */
	for (size_t pos = 0; pos < 50 * KIB; pos += 997) {
		p[pos] ^= 0x10;
		assert_int_not_equal(crc32c(0, p, 50 * KIB), a);
		p[pos] ^= 0x10;
	}
	free(p);
}

/* Page CRCs combine into the CRC of the whole without reading pages again. */
static void test_page_crcs_combine(void **state)
{
	(void)state;
	enum { N = 37 }; /* not a multiple of 3: exercises the leftover path */
	uint8_t *pages = random_buf((size_t)N * 4096);
	uint32_t raw[N];
	crc32c_pages(pages, N, raw);
	for (int i = 0; i < N; i++)
		assert_int_equal(raw[i], crc32c_raw(0, pages + (size_t)i * 4096, 4096));
	/* crc32c over prefix || pages, rebuilt from the prefix and page CRCs. */
	const char prefix[] = "header bytes";
	uint32_t s = crc32c_raw(~0u, prefix, sizeof(prefix));
	for (int i = 0; i < N; i++)
		s = crc32c_shift_page(s) ^ raw[i];
	uint32_t direct = crc32c(crc32c(0, prefix, sizeof(prefix)), pages, (size_t)N * 4096);
	assert_int_equal(~s, direct);
	/* Raw and standard forms agree. */
	assert_int_equal(crc32c(0, pages, 100), ~crc32c_raw(~0u, pages, 100));
	/* A changed byte changes its page's CRC. */
	pages[5 * 4096 + 17] ^= 0x40;
	uint32_t again[N];
	crc32c_pages(pages, N, again);
	assert_int_not_equal(again[5], raw[5]);
	assert_int_equal(again[6], raw[6]);
	free(pages);
}

int main(void)
{
	rng_state = UINT64_C(0x243f6a8885a308d3);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_known_vectors),
		cmocka_unit_test(test_large_constant_blocks),
		cmocka_unit_test(test_against_reference),
		cmocka_unit_test(test_incremental),
		cmocka_unit_test(test_deterministic),
		cmocka_unit_test(test_page_crcs_combine),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
