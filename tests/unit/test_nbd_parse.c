/* SPDX-License-Identifier: MIT */
/*
 * server/nbd/nbd_parse.c: client flags, option headers, INFO/GO and EXPORT_NAME
 * payloads and request headers are accepted exactly when well formed, and a
 * request gets the NBD error the spec asks for (EINVAL, ENOSPC) at every
 * boundary of the export size and the advertised maximum, including offsets
 * and lengths whose sum overflows.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "nbd_io.h"
#include "nbd_parse.h"
#include "nbd_proto.h"

static void test_client_flags(void **state)
{
	(void)state;
	assert_int_equal(nbd_parse_client_flags(NBD_FLAG_FIXED_NEWSTYLE), 0);
	assert_int_equal(nbd_parse_client_flags(NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES), 0);
	assert_int_equal(nbd_parse_client_flags(0), -EPROTO);
	assert_int_equal(nbd_parse_client_flags(NBD_FLAG_NO_ZEROES), -EPROTO);
	assert_int_equal(nbd_parse_client_flags(3 | 4), -EPROTO);
	assert_int_equal(nbd_parse_client_flags(3 | 0x80000000u), -EPROTO);
}

static void test_opt_hdr(void **state)
{
	(void)state;
	uint8_t b[NBD_OPT_HDR_LEN];
	uint32_t opt, len;
	nbd_put64(b, NBD_IHAVEOPT);
	nbd_put32(b + 8, NBD_OPT_GO);
	nbd_put32(b + 12, 0xfffffff0u);
	assert_int_equal(nbd_parse_opt_hdr(b, &opt, &len), 0);
	assert_int_equal(opt, NBD_OPT_GO);
	assert_int_equal(len, 0xfffffff0u);
	b[7] ^= 1;
	assert_int_equal(nbd_parse_opt_hdr(b, &opt, &len), -EPROTO);
}

/* An INFO/GO payload: name, then the info requests. */
static uint32_t info_payload(uint8_t *p, const char *name, uint32_t nlen, uint16_t nreq,
			     const uint16_t *req)
{
	nbd_put32(p, nlen);
	memcpy(p + 4, name, nlen);
	nbd_put16(p + 4 + nlen, nreq);
	for (uint16_t i = 0; i < nreq; i++)
		nbd_put16(p + 6 + nlen + 2u * i, req[i]);
	return 6 + nlen + 2u * nreq;
}

static void test_info_req(void **state)
{
	(void)state;
	static uint8_t p[8192];
	struct nbd_info_req r;
	uint16_t want[2] = { NBD_INFO_BLOCK_SIZE, NBD_INFO_NAME };
	uint32_t len = info_payload(p, "disk", 4, 2, want);
	assert_int_equal(nbd_parse_info_req(p, len, &r), 0);
	assert_string_equal(r.name, "disk");
	assert_int_equal(r.name_len, 4);
	assert_true(r.want_name);
	len = info_payload(p, "disk", 4, 1, want);
	assert_int_equal(nbd_parse_info_req(p, len, &r), 0);
	assert_false(r.want_name);
	/* Empty name: the default export (none here, but well formed). */
	len = info_payload(p, "", 0, 0, NULL);
	assert_int_equal(nbd_parse_info_req(p, len, &r), 0);
	assert_string_equal(r.name, "");
	/* Lengths that do not add up, one byte either way; too short. */
	len = info_payload(p, "disk", 4, 1, want);
	assert_int_equal(nbd_parse_info_req(p, len - 1, &r), -EINVAL);
	assert_int_equal(nbd_parse_info_req(p, len + 1, &r), -EINVAL);
	assert_int_equal(nbd_parse_info_req(p, 5, &r), -EINVAL);
	nbd_put32(p, 0xffffffffu); /* name length past the payload */
	assert_int_equal(nbd_parse_info_req(p, len, &r), -EINVAL);
	/* A name at the limit is fine, one byte more is not; a NUL inside
	 * names no export. */
	static char big[NBD_NAME_MAX + 2];
	memset(big, 'a', sizeof(big) - 1);
	len = info_payload(p, big, NBD_NAME_MAX, 0, NULL);
	assert_int_equal(nbd_parse_info_req(p, len, &r), 0);
	assert_int_equal(strlen(r.name), NBD_NAME_MAX);
	len = info_payload(p, big, NBD_NAME_MAX + 1, 0, NULL);
	assert_int_equal(nbd_parse_info_req(p, len, &r), -EINVAL);
	len = info_payload(p, "a\0b", 3, 0, NULL);
	assert_int_equal(nbd_parse_info_req(p, len, &r), -ENOENT);
}

static void test_export_name(void **state)
{
	(void)state;
	char name[NBD_NAME_MAX + 1];
	static uint8_t big[NBD_NAME_MAX + 1];
	assert_int_equal(nbd_parse_export_name((const uint8_t *)"vm1-swap", 8, name), 0);
	assert_string_equal(name, "vm1-swap");
	assert_int_equal(nbd_parse_export_name((const uint8_t *)"x\0y", 3, name), -ENOENT);
	memset(big, 'n', sizeof(big));
	assert_int_equal(nbd_parse_export_name(big, NBD_NAME_MAX, name), 0);
	assert_int_equal(nbd_parse_export_name(big, NBD_NAME_MAX + 1, name), -EINVAL);
}

static void test_request_header(void **state)
{
	(void)state;
	uint8_t b[NBD_REQUEST_LEN];
	struct nbd_request r;
	nbd_put32(b, NBD_REQUEST_MAGIC);
	nbd_put16(b + 4, NBD_CMD_FLAG_FUA);
	nbd_put16(b + 6, NBD_CMD_WRITE);
	nbd_put64(b + 8, 0x0102030405060708ull);
	nbd_put64(b + 16, 1ull << 40);
	nbd_put32(b + 24, 4096);
	assert_int_equal(nbd_parse_request(b, &r), 0);
	assert_int_equal(r.flags, NBD_CMD_FLAG_FUA);
	assert_int_equal(r.type, NBD_CMD_WRITE);
	assert_int_equal(r.handle, 0x0102030405060708ull);
	assert_int_equal(r.off, 1ull << 40);
	assert_int_equal(r.len, 4096);
	b[0] ^= 0x80;
	assert_int_equal(nbd_parse_request(b, &r), -EPROTO);
}

static uint32_t check(uint16_t type, uint16_t flags, uint64_t off, uint32_t len)
{
	struct nbd_request r = { .flags = flags, .type = type, .off = off, .len = len };
	return nbd_request_check(&r, 1u << 20, 65536);
}

static void test_request_check(void **state)
{
	(void)state;
	const uint64_t size = 1u << 20;
	/* In bounds, at the maximum: served. */
	assert_int_equal(check(NBD_CMD_READ, 0, 0, 65536), 0);
	assert_int_equal(check(NBD_CMD_WRITE, NBD_CMD_FLAG_FUA, size - 65536, 65536), 0);
	assert_int_equal(check(NBD_CMD_READ, 0, size, 0), 0);
	/* Over the advertised maximum: EINVAL, for reads and writes. */
	assert_int_equal(check(NBD_CMD_READ, 0, 0, 65537), NBD_EINVAL);
	assert_int_equal(check(NBD_CMD_WRITE, 0, 0, 65537), NBD_EINVAL);
	/* Past the end: reads and trims EINVAL, writes and zeroes ENOSPC. */
	assert_int_equal(check(NBD_CMD_READ, 0, size - 512, 4096), NBD_EINVAL);
	assert_int_equal(check(NBD_CMD_TRIM, 0, size, 1), NBD_EINVAL);
	assert_int_equal(check(NBD_CMD_WRITE, 0, size - 512, 4096), NBD_ENOSPC);
	assert_int_equal(check(NBD_CMD_WRITE_ZEROES, 0, size + 1, 0), NBD_ENOSPC);
	/* off + len overflowing 64 bits is past the end, not in bounds. */
	assert_int_equal(check(NBD_CMD_READ, 0, UINT64_MAX - 10, 4096), NBD_EINVAL);
	assert_int_equal(check(NBD_CMD_WRITE, 0, UINT64_MAX, 1), NBD_ENOSPC);
	/* TRIM and WRITE_ZEROES are not bounded by the maximum (no payload). */
	assert_int_equal(check(NBD_CMD_TRIM, 0, 0, (uint32_t)size), 0);
	assert_int_equal(check(NBD_CMD_WRITE_ZEROES, NBD_CMD_FLAG_NO_HOLE, 0, (uint32_t)size), 0);
	/* Unknown flags and unknown commands: EINVAL. */
	assert_int_equal(check(NBD_CMD_READ, 1u << 7, 0, 512), NBD_EINVAL);
	assert_int_equal(check(NBD_CMD_FLUSH, 1u << 15, 0, 0), NBD_EINVAL);
	assert_int_equal(check(NBD_CMD_FLUSH, 0, 0, 0), 0);
	assert_int_equal(check(5, 0, 0, 0), NBD_EINVAL);
	assert_int_equal(check(0xffff, 0, 0, 0), NBD_EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_client_flags),
		cmocka_unit_test(test_opt_hdr),
		cmocka_unit_test(test_info_req),
		cmocka_unit_test(test_export_name),
		cmocka_unit_test(test_request_header),
		cmocka_unit_test(test_request_check),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
