/* SPDX-License-Identifier: MIT */
/*
 * CRC32C with the SSE4.2 crc32 instruction when the CPU has it, else a table.
 *
 * The hardware path runs three independent streams over thirds of each large
 * block and folds them together with a carry-less combine, because a single
 * stream is bound by the instruction's 3-cycle latency (about 8 bytes per
 * 3 cycles) while three streams fill its 1-per-cycle throughput. A 2 MiB batch
 * is checksummed on both ends of every transfer, so this matters.
 */
#include "crc32c.h"

#include <pthread.h>
#include <string.h>

#define POLY 0x82f63b78u /* reflected Castagnoli polynomial */

static uint32_t table[8][256];
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

static void table_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = c & 1 ? (c >> 1) ^ POLY : c >> 1;
		table[0][i] = c;
	}
	for (uint32_t i = 0; i < 256; i++)
		for (int t = 1; t < 8; t++)
			table[t][i] = (table[t - 1][i] >> 8) ^ table[0][table[t - 1][i] & 0xff];
}

static uint32_t crc32c_sw(uint32_t crc, const unsigned char *p, size_t len)
{
	pthread_once(&table_once, table_init);
	while (len >= 8) {
		uint64_t v;
		memcpy(&v, p, 8);
		v ^= crc;
		crc = table[7][v & 0xff] ^ table[6][(v >> 8) & 0xff] ^
		      table[5][(v >> 16) & 0xff] ^ table[4][(v >> 24) & 0xff] ^
		      table[3][(v >> 32) & 0xff] ^ table[2][(v >> 40) & 0xff] ^
		      table[1][(v >> 48) & 0xff] ^ table[0][v >> 56];
		p += 8;
		len -= 8;
	}
	while (len--)
		crc = (crc >> 8) ^ table[0][(crc ^ *p++) & 0xff];
	return crc;
}

/* A 32x32 matrix over GF(2), one column per input bit, applied to a CRC. */
static uint32_t gf2_apply(const uint32_t *mat, uint32_t vec)
{
	uint32_t sum = 0;
	for (; vec; vec >>= 1, mat++)
		if (vec & 1)
			sum ^= *mat;
	return sum;
}

static void gf2_square(uint32_t *sq, const uint32_t *mat)
{
	for (int i = 0; i < 32; i++)
		sq[i] = gf2_apply(mat, mat[i]);
}

/* The operator that advances a reflected CRC register over len zero bytes. */
static void gf2_zeros_operator(size_t len, uint32_t *op)
{
	uint32_t m[32], tmp[32];
	m[0] = POLY; /* one zero bit */
	for (int i = 1; i < 32; i++)
		m[i] = 1u << (i - 1);
	for (int i = 0; i < 32; i++)
		op[i] = 1u << i; /* identity */
	for (size_t bits = len * 8; bits; bits >>= 1) {
		if (bits & 1) {
			for (int i = 0; i < 32; i++)
				tmp[i] = gf2_apply(m, op[i]);
			memcpy(op, tmp, sizeof(tmp));
		}
		gf2_square(tmp, m);
		memcpy(m, tmp, sizeof(tmp));
	}
}

#define PAGE 4096
static uint32_t shift_table[4][256]; /* advance a raw CRC over PAGE zero bytes */
static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static int have_hw;

static void crc_init(void)
{
#if defined(__x86_64__)
	__builtin_cpu_init();
	have_hw = __builtin_cpu_supports("sse4.2");
#endif
	uint32_t op[32];
	gf2_zeros_operator(PAGE, op);
	for (int b = 0; b < 4; b++)
		for (uint32_t i = 0; i < 256; i++)
			shift_table[b][i] = gf2_apply(op, i << (8 * b));
}

uint32_t crc32c_shift_page(uint32_t state)
{
	pthread_once(&init_once, crc_init);
	return shift_table[0][state & 0xff] ^ shift_table[1][(state >> 8) & 0xff] ^
	       shift_table[2][(state >> 16) & 0xff] ^ shift_table[3][state >> 24];
}

#if defined(__x86_64__)
#include <nmmintrin.h>
#include <wmmintrin.h>

#define STRIDE PAGE /* bytes per stream per round: 3 * 4 KiB = 12 KiB */

__attribute__((target("sse4.2")))
static uint32_t crc32c_hw(uint32_t crc, const unsigned char *p, size_t len)
{
	uint64_t c0 = crc;
	while (len >= 3 * STRIDE) {
		uint64_t c1 = 0, c2 = 0;
		const unsigned char *p1 = p + STRIDE, *p2 = p + 2 * STRIDE;
		for (size_t i = 0; i < STRIDE; i += 8) {
			uint64_t v0, v1, v2;
			memcpy(&v0, p + i, 8);
			memcpy(&v1, p1 + i, 8);
			memcpy(&v2, p2 + i, 8);
			c0 = _mm_crc32_u64(c0, v0);
			c1 = _mm_crc32_u64(c1, v1);
			c2 = _mm_crc32_u64(c2, v2);
		}
		/* crc(a||b||c) = shift(shift(ca) ^ cb) ^ cc, with zero-init b, c. */
		c0 = crc32c_shift_page((uint32_t)c0) ^ (uint32_t)c1;
		c0 = crc32c_shift_page((uint32_t)c0) ^ (uint32_t)c2;
		p += 3 * STRIDE;
		len -= 3 * STRIDE;
	}
	while (len >= 8) {
		uint64_t v;
		memcpy(&v, p, 8);
		c0 = _mm_crc32_u64(c0, v);
		p += 8;
		len -= 8;
	}
	while (len--)
		c0 = _mm_crc32_u8((uint32_t)c0, *p++);
	return (uint32_t)c0;
}

/* Three pages at once, each from state 0: three independent streams fill
 * the crc32 unit the way the 3-way loop above does. */
__attribute__((target("sse4.2")))
static void crc32c_pages_hw(const unsigned char *p, size_t n, uint32_t *out)
{
	for (; n >= 3; n -= 3, p += 3 * PAGE, out += 3) {
		uint64_t c0 = 0, c1 = 0, c2 = 0;
		for (size_t i = 0; i < PAGE; i += 8) {
			uint64_t v0, v1, v2;
			memcpy(&v0, p + i, 8);
			memcpy(&v1, p + PAGE + i, 8);
			memcpy(&v2, p + 2 * PAGE + i, 8);
			c0 = _mm_crc32_u64(c0, v0);
			c1 = _mm_crc32_u64(c1, v1);
			c2 = _mm_crc32_u64(c2, v2);
		}
		out[0] = (uint32_t)c0;
		out[1] = (uint32_t)c1;
		out[2] = (uint32_t)c2;
	}
	for (; n; n--, p += PAGE)
		*out++ = crc32c_hw(0, p, PAGE);
}
#endif

uint32_t crc32c_raw(uint32_t state, const void *buf, size_t len)
{
	pthread_once(&init_once, crc_init);
#if defined(__x86_64__)
	if (have_hw)
		return crc32c_hw(state, buf, len);
#endif
	return crc32c_sw(state, buf, len);
}

uint32_t crc32c(uint32_t crc, const void *buf, size_t len)
{
	/* The standard CRC32C pre- and post-inverts. */
	return ~crc32c_raw(~crc, buf, len);
}

void crc32c_pages(const void *pages, size_t n, uint32_t *out)
{
	pthread_once(&init_once, crc_init);
#if defined(__x86_64__)
	if (have_hw) {
		crc32c_pages_hw(pages, n, out);
		return;
	}
#endif
	for (size_t i = 0; i < n; i++)
		out[i] = crc32c_sw(0, (const unsigned char *)pages + i * PAGE, PAGE);
}
