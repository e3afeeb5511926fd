/* SPDX-License-Identifier: MIT */
/*
 * Frame codec: header pack/unpack and its structural rules, CRC sealing and
 * verification, the status<->errno map, reply headers.
 *
 * Every rejection test starts from a header that is accepted, changes one
 * thing, and checks the result is -EPROTO with a reason, so a test cannot
 * pass because of some unrelated rule.
 */
#include <endian.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "test_rng.h"

#include "crc32c.h"
#include "frame.h"

static const uint16_t data_ops[] = { SPILL_OP_PING, SPILL_OP_READ, SPILL_OP_WRITE,
				     SPILL_OP_INVALIDATE, SPILL_OP_CTRL };
#define NOPS (sizeof(data_ops) / sizeof(data_ops[0]))

/* A valid request for op, with distinctive values in every field. */
static struct frame_hdr make_req(uint16_t op, uint16_t npages)
{
	struct frame_hdr h = {
		.version = SPILL_WIRE_VERSION,
		.op = op,
		.req_id = UINT64_C(0x0123456789abcdef),
		.extent_id = UINT64_C(0xfedcba9876543210),
		.page = 0xdeadbeefu,
		.npages = npages,
		.crc = 0xa5a55a5au,
	};
	switch (op) {
	case SPILL_OP_WRITE:
		h.payload_len = (uint32_t)npages * SPILL_PAGE_SIZE;
		break;
	case SPILL_OP_CTRL:
		h.payload_len = 123;
		break;
	}
	return h;
}

static void assert_hdr_equal(const struct frame_hdr *a, const struct frame_hdr *b)
{
	assert_int_equal(a->version, b->version);
	assert_int_equal(a->flags, b->flags);
	assert_int_equal(a->op, b->op);
	assert_true(a->req_id == b->req_id);
	assert_true(a->extent_id == b->extent_id);
	assert_int_equal(a->page, b->page);
	assert_int_equal(a->npages, b->npages);
	assert_int_equal(a->status, b->status);
	assert_int_equal(a->payload_len, b->payload_len);
	assert_int_equal(a->crc, b->crc);
}

/* Pack h, unpack it, return the unpack result; on success the fields match. */
static int pack_unpack(const struct frame_hdr *h, const char **why)
{
	struct spill_wire_hdr w;
	struct frame_hdr out;
	memset(&w, 0xcc, sizeof(w));
	memset(&out, 0xcc, sizeof(out));
	frame_hdr_pack(h, &w);
	*why = NULL;
	int rc = frame_hdr_unpack(&w, &out, why);
	if (rc == 0) {
		struct frame_hdr want = *h;
		if (!want.version)
			want.version = SPILL_WIRE_VERSION;
		assert_hdr_equal(&out, &want);
	}
	return rc;
}

static void expect_ok(const struct frame_hdr *h)
{
	const char *why;
	int rc = pack_unpack(h, &why);
	if (rc)
		fail_msg("op 0x%x npages %u payload %u flags 0x%x status %u rejected: %s",
			 h->op, h->npages, h->payload_len, h->flags, h->status,
			 why ? why : "(no reason)");
}

static void expect_reject_wire(const struct spill_wire_hdr *w)
{
	struct frame_hdr out;
	const char *why = NULL;
	assert_int_equal(frame_hdr_unpack(w, &out, &why), -EPROTO);
	assert_non_null(why);
	assert_true(strlen(why) > 0);
	/* why is optional. */
	assert_int_equal(frame_hdr_unpack(w, &out, NULL), -EPROTO);
}

static void expect_reject(const struct frame_hdr *h)
{
	struct spill_wire_hdr w;
	frame_hdr_pack(h, &w);
	expect_reject_wire(&w);
}

/* ---- pack / unpack round trips ------------------------------------------ */

static void test_roundtrip_requests(void **state)
{
	(void)state;
	for (size_t i = 0; i < NOPS; i++) {
		static const uint16_t counts[] = { 1, 2, 255, 256, 511, 512 };
		for (size_t c = 0; c < sizeof(counts) / sizeof(counts[0]); c++) {
			struct frame_hdr h = make_req(data_ops[i], counts[c]);
			expect_ok(&h);
		}
	}
	/* PING and CTRL ignore the range fields: any value survives. */
	struct frame_hdr h = make_req(SPILL_OP_PING, 0);
	expect_ok(&h);
	h.npages = 0xffff;
	expect_ok(&h);
	h = make_req(SPILL_OP_CTRL, 0);
	h.payload_len = 1;
	expect_ok(&h);
	h.payload_len = SPILL_MAX_CTRL_PAYLOAD;
	expect_ok(&h);
	/* Extreme field values. */
	h = make_req(SPILL_OP_READ, 7);
	h.req_id = UINT64_MAX;
	h.extent_id = 0;
	h.page = UINT32_MAX;
	h.crc = UINT32_MAX;
	expect_ok(&h);
	/* version 0 in the host header means "current". */
	h.version = 0;
	expect_ok(&h);
}

static void test_roundtrip_replies(void **state)
{
	(void)state;
	for (size_t i = 0; i < NOPS; i++) {
		for (uint16_t st = 0; st < SPILL_ST_MAX; st++) {
			struct frame_hdr h = make_req(data_ops[i], 3);
			h.op |= SPILL_OP_REPLY;
			h.status = st;
			h.payload_len = 0;
			expect_ok(&h);
		}
	}
	/* READ reply with pages, with and without the presence map. */
	for (uint16_t n = 1; n <= SPILL_MAX_BATCH_PAGES; n = n < 8 ? n + 1 : n * 2) {
		struct frame_hdr h = make_req(SPILL_OP_READ, n);
		h.op |= SPILL_OP_REPLY;
		h.payload_len = (uint32_t)n * SPILL_PAGE_SIZE;
		expect_ok(&h);
		h.flags = SPILL_WF_PRESENT_MAP;
		h.payload_len += SPILL_PRESENT_MAP_BYTES;
		h.status = SPILL_ST_ABSENT;
		expect_ok(&h);
	}
	/* The largest legal frame: a full batch with its map. */
	struct frame_hdr h = make_req(SPILL_OP_READ, SPILL_MAX_BATCH_PAGES);
	h.op |= SPILL_OP_REPLY;
	h.flags = SPILL_WF_PRESENT_MAP;
	h.payload_len = SPILL_MAX_PAYLOAD;
	expect_ok(&h);
	/* CTRL reply: 0..SPILL_MAX_CTRL_PAYLOAD bytes. */
	h = make_req(SPILL_OP_CTRL, 0);
	h.op |= SPILL_OP_REPLY;
	h.payload_len = 0;
	expect_ok(&h);
	h.payload_len = SPILL_MAX_CTRL_PAYLOAD;
	expect_ok(&h);
}

/* The wire is little-endian whatever the host: check the bytes themselves. */
static void test_wire_byte_order(void **state)
{
	(void)state;
	struct frame_hdr h = make_req(SPILL_OP_WRITE, 2);
	h.payload_len = 0x00002000;
	h.wver = UINT64_C(0x1122334455667788);
	struct spill_wire_hdr w;
	frame_hdr_pack(&h, &w);
	const uint8_t *b = (const uint8_t *)&w;
	static const uint8_t want[SPILL_WIRE_HDR_SIZE] = {
		'S', 'P', 'I', 'L',                             /* magic       */
		2,                                              /* version     */
		0,                                              /* flags       */
		3, 0,                                           /* op          */
		0xef, 0xcd, 0xab, 0x89, 0x67, 0x45, 0x23, 0x01, /* req_id      */
		0x10, 0x32, 0x54, 0x76, 0x98, 0xba, 0xdc, 0xfe, /* extent_id   */
		0xef, 0xbe, 0xad, 0xde,                         /* page        */
		2, 0,                                           /* npages      */
		0, 0,                                           /* status      */
		0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11, /* wver        */
		0x00, 0x20, 0, 0,                               /* payload_len */
		0x5a, 0x5a, 0xa5, 0xa5,                         /* crc         */
	};
	assert_memory_equal(b, want, sizeof(want));
}

/* ---- structural rules --------------------------------------------------- */

static void test_reject_bad_magic(void **state)
{
	(void)state;
	static const uint32_t bad[] = { 0, 0x4c495054u, 0x5350494cu /* byte-swapped */,
					0xffffffffu, 0x4c495052u };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct frame_hdr h = make_req(SPILL_OP_PING, 0);
		struct spill_wire_hdr w;
		frame_hdr_pack(&h, &w);
		w.magic = htole32(bad[i]);
		expect_reject_wire(&w);
	}
}

/* Only WRITE and INVALIDATE carry a write version; replies echo it. */
static void test_write_version_only_on_writes(void **state)
{
	(void)state;
	static const uint16_t writes[] = { SPILL_OP_WRITE, SPILL_OP_INVALIDATE };
	static const uint16_t others[] = { SPILL_OP_READ, SPILL_OP_PING, SPILL_OP_ALLOC,
					   SPILL_OP_FREE, SPILL_OP_KEY };
	for (size_t i = 0; i < sizeof(writes) / sizeof(writes[0]); i++) {
		struct frame_hdr h = make_req(writes[i], 3);
		h.wver = SPILL_WVER_LIMIT - 1;
		expect_ok(&h);
		struct frame_hdr r;
		frame_reply_hdr(&h, SPILL_ST_ESTALE, 0, &r);
		assert_true(r.wver == SPILL_WVER_LIMIT - 1);
		expect_ok(&r);
		/* A version a clock could not follow without wrapping. */
		static const uint64_t too_big[] = { SPILL_WVER_LIMIT, UINT64_MAX };
		for (int k = 0; k < 2; k++) {
			h.wver = too_big[k];
			struct spill_wire_hdr w;
			frame_hdr_pack(&h, &w);
			expect_reject_wire(&w);
		}
	}
	for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++) {
		struct frame_hdr h = make_req(others[i], 3);
		if (others[i] != SPILL_OP_READ)
			h.npages = 0;
		expect_ok(&h);
		h.wver = 1;
		struct spill_wire_hdr w;
		frame_hdr_pack(&h, &w);
		expect_reject_wire(&w);
	}
	assert_int_equal(frame_status_to_errno(SPILL_ST_ESTALE), ESTALE);
	assert_int_equal(frame_errno_to_status(-ESTALE), SPILL_ST_ESTALE);
}

static void test_reject_version(void **state)
{
	(void)state;
	static const uint8_t bad[] = { 0, 1, 3, 0x81, 0xff }; /* 1: before write versions */
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct frame_hdr h = make_req(SPILL_OP_PING, 0);
		struct spill_wire_hdr w;
		frame_hdr_pack(&h, &w);
		w.version = bad[i];
		expect_reject_wire(&w);
		/* Replies too. */
		h.op |= SPILL_OP_REPLY;
		frame_hdr_pack(&h, &w);
		w.version = bad[i];
		expect_reject_wire(&w);
	}
}

static void test_reject_unknown_op(void **state)
{
	(void)state;
	static const uint16_t bad[] = { 0, 9, 10, 0x10, 0x100, 0x4001, 0x7fff };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct frame_hdr h = make_req(SPILL_OP_PING, 0);
		h.op = bad[i];
		expect_reject(&h);
		h.op = bad[i] | SPILL_OP_REPLY;
		expect_reject(&h);
	}
}

static void test_reject_unknown_flags(void **state)
{
	(void)state;
	for (unsigned bit = 1; bit < 8; bit++) {
		struct frame_hdr h = make_req(SPILL_OP_READ, 2);
		h.flags = (uint8_t)(1u << bit);
		expect_reject(&h);
		/* Also on a reply, where PRESENT_MAP itself is legal. */
		h.op |= SPILL_OP_REPLY;
		expect_reject(&h);
		h.flags |= SPILL_WF_PRESENT_MAP;
		expect_reject(&h);
	}
}

static void test_reject_flags_on_request(void **state)
{
	(void)state;
	for (size_t i = 0; i < NOPS; i++) {
		struct frame_hdr h = make_req(data_ops[i], 2);
		expect_ok(&h);
		h.flags = SPILL_WF_PRESENT_MAP;
		expect_reject(&h);
	}
}

static void test_reject_status_on_request(void **state)
{
	(void)state;
	for (size_t i = 0; i < NOPS; i++) {
		static const uint16_t st[] = { 1, SPILL_ST_ABSENT, SPILL_ST_MAX, 0xffff };
		for (size_t s = 0; s < sizeof(st) / sizeof(st[0]); s++) {
			struct frame_hdr h = make_req(data_ops[i], 2);
			h.status = st[s];
			expect_reject(&h);
		}
	}
}

static void test_reject_npages(void **state)
{
	(void)state;
	static const uint16_t batch_ops[] = { SPILL_OP_READ, SPILL_OP_WRITE,
					      SPILL_OP_INVALIDATE };
	static const uint16_t bad[] = { 0, 513, 1024, 0xffff };
	for (size_t i = 0; i < 3; i++) {
		struct frame_hdr ok = make_req(batch_ops[i], 512);
		expect_ok(&ok);
		ok = make_req(batch_ops[i], 1);
		expect_ok(&ok);
		for (size_t b = 0; b < sizeof(bad) / sizeof(bad[0]); b++) {
			struct frame_hdr h = make_req(batch_ops[i], bad[b]);
			/* WRITE of 0 pages: a consistent 0-byte payload, so only
			 * the page-count rule can refuse it. 513+ pages cannot
			 * have a consistent payload within SPILL_MAX_PAYLOAD;
			 * give it a legal-sized one. */
			if (batch_ops[i] == SPILL_OP_WRITE)
				h.payload_len = bad[b] ? SPILL_MAX_BATCH_PAGES * SPILL_PAGE_SIZE : 0;
			expect_reject(&h);
		}
	}
	/* A READ reply that carries pages needs a valid count too. */
	struct frame_hdr h = make_req(SPILL_OP_READ, 0);
	h.op |= SPILL_OP_REPLY;
	h.flags = SPILL_WF_PRESENT_MAP;
	h.payload_len = SPILL_PRESENT_MAP_BYTES;
	expect_reject(&h);
	h.npages = 513;
	h.payload_len = 513 * SPILL_PAGE_SIZE;
	h.flags = 0;
	expect_reject(&h);
}

static void test_reject_write_payload(void **state)
{
	(void)state;
	for (uint16_t n = 1; n <= SPILL_MAX_BATCH_PAGES; n *= 2) {
		uint32_t good = (uint32_t)n * SPILL_PAGE_SIZE;
		const uint32_t bad[] = { 0, good - 1, good + 1, good - SPILL_PAGE_SIZE,
					 good + SPILL_PAGE_SIZE, good + SPILL_PRESENT_MAP_BYTES };
		for (size_t b = 0; b < sizeof(bad) / sizeof(bad[0]); b++) {
			struct frame_hdr h = make_req(SPILL_OP_WRITE, n);
			h.payload_len = bad[b];
			expect_reject(&h);
		}
	}
}

static void test_reject_payload_on_bodyless(void **state)
{
	(void)state;
	static const uint16_t ops[] = { SPILL_OP_READ, SPILL_OP_INVALIDATE, SPILL_OP_PING,
					SPILL_OP_ALLOC, SPILL_OP_FREE };
	static const uint32_t len[] = { 1, SPILL_PAGE_SIZE, 2 * SPILL_PAGE_SIZE, 64 };
	for (size_t i = 0; i < 5; i++)
		for (size_t l = 0; l < 4; l++) {
			struct frame_hdr h = make_req(ops[i], 2);
			h.payload_len = len[l];
			expect_reject(&h);
		}
	/* Data replies other than READ carry no payload either. */
	static const uint16_t rops[] = { SPILL_OP_WRITE, SPILL_OP_INVALIDATE, SPILL_OP_PING,
					 SPILL_OP_ALLOC, SPILL_OP_FREE };
	for (size_t i = 0; i < 5; i++) {
		struct frame_hdr h = make_req(rops[i], 2);
		h.op |= SPILL_OP_REPLY;
		h.payload_len = 0;
		expect_ok(&h);
		h.payload_len = 2 * SPILL_PAGE_SIZE;
		expect_reject(&h);
	}
}

/* A KEY reply carries its 16-byte key exactly when it succeeds. */
static void test_key_reply_payload(void **state)
{
	(void)state;
	struct frame_hdr h = make_req(SPILL_OP_KEY, 0);
	h.npages = 0;
	expect_ok(&h);
	h.payload_len = SPILL_WIRE_KEY_SIZE;
	expect_reject(&h);
	h.op |= SPILL_OP_REPLY;
	expect_ok(&h);
	h.payload_len = 0;
	expect_reject(&h);
	h.status = SPILL_ST_EACCES;
	expect_ok(&h);
	h.payload_len = SPILL_WIRE_KEY_SIZE;
	expect_reject(&h);
	h.status = SPILL_ST_OK;
	h.payload_len = SPILL_WIRE_KEY_SIZE + 1;
	expect_reject(&h);
}

static void test_reject_ctrl_payload(void **state)
{
	(void)state;
	struct frame_hdr h = make_req(SPILL_OP_CTRL, 0);
	h.payload_len = 0;
	expect_reject(&h);
	h.payload_len = SPILL_MAX_CTRL_PAYLOAD + 1;
	expect_reject(&h);
	h.payload_len = SPILL_MAX_PAYLOAD;
	expect_reject(&h);
	/* Reply: empty is fine, oversize is not. */
	h.op |= SPILL_OP_REPLY;
	h.payload_len = SPILL_MAX_CTRL_PAYLOAD + 1;
	expect_reject(&h);
}

static void test_reject_payload_too_large(void **state)
{
	(void)state;
	static const uint32_t len[] = { SPILL_MAX_PAYLOAD + 1, SPILL_MAX_PAYLOAD + SPILL_PAGE_SIZE,
					0x80000000u, UINT32_MAX };
	for (size_t l = 0; l < 4; l++) {
		for (size_t i = 0; i < NOPS; i++) {
			struct frame_hdr h = make_req(data_ops[i], 512);
			h.payload_len = len[l];
			expect_reject(&h);
			h.op |= SPILL_OP_REPLY;
			h.flags = SPILL_WF_PRESENT_MAP;
			expect_reject(&h);
		}
	}
}

static void test_reject_reply_status(void **state)
{
	(void)state;
	static const uint16_t bad[] = { SPILL_ST_MAX, SPILL_ST_MAX + 1, 0x100, 0xffff };
	for (size_t i = 0; i < NOPS; i++)
		for (size_t b = 0; b < 4; b++) {
			struct frame_hdr h = make_req(data_ops[i], 1);
			h.op |= SPILL_OP_REPLY;
			h.payload_len = 0;
			h.status = SPILL_ST_MAX - 1;
			expect_ok(&h);
			h.status = bad[b];
			expect_reject(&h);
		}
}

static void test_reject_read_reply_mismatch(void **state)
{
	(void)state;
	for (uint16_t n = 1; n <= SPILL_MAX_BATCH_PAGES; n *= 2) {
		uint32_t pages = (uint32_t)n * SPILL_PAGE_SIZE;
		/* Without the map the payload is exactly the pages. */
		const uint32_t bad_plain[] = { 1, pages - 1, pages + 1, pages + SPILL_PRESENT_MAP_BYTES,
					       pages + SPILL_PAGE_SIZE, SPILL_PRESENT_MAP_BYTES };
		for (size_t b = 0; b < sizeof(bad_plain) / sizeof(bad_plain[0]); b++) {
			struct frame_hdr h = make_req(SPILL_OP_READ, n);
			h.op |= SPILL_OP_REPLY;
			h.payload_len = bad_plain[b];
			expect_reject(&h);
		}
		/* With it, map bytes plus pages. */
		const uint32_t bad_map[] = { 1, pages, pages + SPILL_PRESENT_MAP_BYTES - 1,
					     pages + SPILL_PRESENT_MAP_BYTES + 1,
					     SPILL_PRESENT_MAP_BYTES };
		for (size_t b = 0; b < sizeof(bad_map) / sizeof(bad_map[0]); b++) {
			struct frame_hdr h = make_req(SPILL_OP_READ, n);
			h.op |= SPILL_OP_REPLY;
			h.flags = SPILL_WF_PRESENT_MAP;
			h.payload_len = bad_map[b];
			expect_reject(&h);
		}
	}
}

/* ---- CRC ---------------------------------------------------------------- */



static void fill_random(void *buf, size_t n)
{
	uint8_t *p = buf;
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(rng() >> 32);
}

static void test_crc_seal_verify(void **state)
{
	(void)state;
	static const uint16_t counts[] = { 1, 3 };
	for (size_t c = 0; c < 2; c++) {
		uint32_t len = counts[c] * SPILL_PAGE_SIZE;
		uint8_t *payload = malloc(len);
		assert_non_null(payload);
		fill_random(payload, len);
		struct frame_hdr h = make_req(SPILL_OP_WRITE, counts[c]);
		struct spill_wire_hdr w;
		frame_hdr_pack(&h, &w);
		struct iovec iov = { payload, len };
		frame_seal(&w, &iov, 1);
		assert_int_equal(frame_verify(&w, &iov, 1), 0);

		/* The CRC is over the header with crc zeroed, then the payload. */
		struct spill_wire_hdr z = w;
		z.crc = 0;
		uint32_t want = crc32c(crc32c(0, &z, sizeof(z)), payload, len);
		assert_int_equal(le32toh(w.crc), want);
		assert_int_equal(frame_crc(&w, &iov, 1), want);
		/* frame_crc ignores whatever is in the crc field. */
		z.crc = 0x12345678;
		assert_int_equal(frame_crc(&z, &iov, 1), want);

		/* Every single-byte change in the header is detected... */
		uint8_t *hb = (uint8_t *)&w;
		for (size_t i = 0; i < sizeof(w); i++) {
			static const uint8_t masks[] = { 0x01, 0x80, 0xff };
			for (size_t m = 0; m < 3; m++) {
				hb[i] ^= masks[m];
				if (frame_verify(&w, &iov, 1) != -EBADMSG)
					fail_msg("header byte %zu ^0x%02x not detected", i, masks[m]);
				hb[i] ^= masks[m];
			}
		}
		assert_int_equal(frame_verify(&w, &iov, 1), 0);
		/* ...and so is every one in the payload. */
		for (size_t i = 0; i < len; i++) {
			uint8_t mask = (uint8_t)(1u << (i % 8));
			payload[i] ^= mask;
			if (frame_verify(&w, &iov, 1) != -EBADMSG)
				fail_msg("payload byte %zu ^0x%02x not detected", i, mask);
			payload[i] ^= mask;
		}
		assert_int_equal(frame_verify(&w, &iov, 1), 0);
		/* A payload shorter or longer than sealed fails too. */
		iov.iov_len = len - 1;
		assert_int_equal(frame_verify(&w, &iov, 1), -EBADMSG);
		assert_int_equal(frame_verify(&w, NULL, 0), -EBADMSG);
		free(payload);
	}
}

static void test_crc_no_payload(void **state)
{
	(void)state;
	struct frame_hdr h = make_req(SPILL_OP_PING, 0);
	struct spill_wire_hdr w;
	frame_hdr_pack(&h, &w);
	frame_seal(&w, NULL, 0);
	assert_int_equal(frame_verify(&w, NULL, 0), 0);
	struct iovec empty = { NULL, 0 };
	assert_int_equal(frame_verify(&w, &empty, 1), 0);
	w.req_id ^= htole64(1);
	assert_int_equal(frame_verify(&w, NULL, 0), -EBADMSG);
	/* Sealing twice gives the same CRC (the old one is not included). */
	frame_seal(&w, NULL, 0);
	uint32_t c1 = w.crc;
	frame_seal(&w, NULL, 0);
	assert_int_equal(w.crc, c1);
}

static void test_crc_split_iovecs(void **state)
{
	(void)state;
	const size_t len = SPILL_MAX_PAYLOAD;
	uint8_t *payload = malloc(len);
	assert_non_null(payload);
	fill_random(payload, len);
	struct frame_hdr h = make_req(SPILL_OP_READ, 512);
	h.op |= SPILL_OP_REPLY;
	h.flags = SPILL_WF_PRESENT_MAP;
	h.payload_len = (uint32_t)len;
	struct spill_wire_hdr w;
	frame_hdr_pack(&h, &w);
	struct iovec one = { payload, len };
	uint32_t want = frame_crc(&w, &one, 1);
	frame_seal(&w, &one, 1);

	/* The natural split: map, then the pages one by one. */
	struct iovec pages[1 + SPILL_MAX_BATCH_PAGES];
	pages[0] = (struct iovec){ payload, SPILL_PRESENT_MAP_BYTES };
	for (size_t i = 0; i < SPILL_MAX_BATCH_PAGES; i++)
		pages[1 + i] = (struct iovec){ payload + SPILL_PRESENT_MAP_BYTES +
						       i * SPILL_PAGE_SIZE,
					       SPILL_PAGE_SIZE };
	assert_int_equal(frame_crc(&w, pages, 1 + SPILL_MAX_BATCH_PAGES), want);
	assert_int_equal(frame_verify(&w, pages, 1 + SPILL_MAX_BATCH_PAGES), 0);

	/* Random splits, including empty pieces and odd sizes. */
	for (int round = 0; round < 200; round++) {
		struct iovec iov[16];
		size_t off = 0;
		int n = 0;
		while (n < 15 && off < len) {
			size_t piece;
			switch (rng() % 4) {
			case 0: piece = 0; break;
			case 1: piece = rng() % 16; break;
			case 2: piece = rng() % 20000; break;
			default: piece = rng() % (len - off + 1); break;
			}
			if (piece > len - off)
				piece = len - off;
			iov[n++] = (struct iovec){ payload + off, piece };
			off += piece;
		}
		iov[n++] = (struct iovec){ payload + off, len - off };
		if (frame_crc(&w, iov, n) != want)
			fail_msg("round %d: crc over %d pieces differs", round, n);
		assert_int_equal(frame_verify(&w, iov, n), 0);
	}
	free(payload);
}

/* ---- status map, reply headers, names ----------------------------------- */

static void test_status_errno_map(void **state)
{
	(void)state;
	int seen[SPILL_ST_MAX];
	assert_int_equal(frame_status_to_errno(SPILL_ST_OK), 0);
	assert_int_equal(frame_errno_to_status(0), SPILL_ST_OK);
	for (uint16_t s = 0; s < SPILL_ST_MAX; s++) {
		int e = frame_status_to_errno(s);
		assert_true(e >= 0);
		if (s)
			assert_true(e > 0);
		/* Every status maps to its own errno... */
		for (uint16_t p = 0; p < s; p++)
			if (seen[p] == e)
				fail_msg("status %u and %u both map to errno %d", p, s, e);
		seen[s] = e;
		/* ...which maps back, whichever sign it is given with. */
		assert_int_equal(frame_errno_to_status(e), s);
		assert_int_equal(frame_errno_to_status(-e), s);
		const char *name = frame_status_name(s);
		assert_non_null(name);
		assert_string_not_equal(name, "unknown status");
	}
	/* The mappings callers rely on by name. */
	assert_int_equal(frame_status_to_errno(SPILL_ST_EPROTO), EPROTO);
	assert_int_equal(frame_status_to_errno(SPILL_ST_ENOSPC), ENOSPC);
	assert_int_equal(frame_status_to_errno(SPILL_ST_EDQUOT), EDQUOT);
	assert_int_equal(frame_status_to_errno(SPILL_ST_ABSENT), ENODATA);
	assert_int_equal(frame_status_to_errno(SPILL_ST_EBUSY), EBUSY);
	assert_int_equal(frame_status_to_errno(SPILL_ST_EINVAL), EINVAL);
	assert_int_equal(frame_status_to_errno(SPILL_ST_ERANGE), ERANGE);
	assert_int_equal(frame_status_to_errno(SPILL_ST_EINTERNAL), EIO);
	/* Unknown either way degrades to an internal error. */
	assert_int_equal(frame_status_to_errno(SPILL_ST_MAX), EIO);
	assert_int_equal(frame_status_to_errno(0xffff), EIO);
	assert_string_equal(frame_status_name(SPILL_ST_MAX), "unknown status");
	assert_int_equal(frame_errno_to_status(EXDEV), SPILL_ST_EINTERNAL);
	assert_int_equal(frame_errno_to_status(-ENOMEM), SPILL_ST_EINTERNAL);
}

static void test_reply_hdr(void **state)
{
	(void)state;
	for (size_t i = 0; i < NOPS; i++) {
		struct frame_hdr req = make_req(data_ops[i], 17);
		struct frame_hdr rep;
		memset(&rep, 0xcc, sizeof(rep));
		uint32_t plen = data_ops[i] == SPILL_OP_READ ? 17 * SPILL_PAGE_SIZE : 0;
		frame_reply_hdr(&req, SPILL_ST_OK, plen, &rep);
		assert_int_equal(rep.op, data_ops[i] | SPILL_OP_REPLY);
		assert_true(rep.op & SPILL_OP_REPLY);
		assert_true(rep.req_id == req.req_id);
		assert_true(rep.extent_id == req.extent_id);
		assert_int_equal(rep.page, req.page);
		assert_int_equal(rep.npages, req.npages);
		assert_int_equal(rep.status, SPILL_ST_OK);
		assert_int_equal(rep.payload_len, plen);
		assert_int_equal(rep.version, SPILL_WIRE_VERSION);
		assert_int_equal(rep.flags, 0);
		assert_int_equal(rep.crc, 0);
		/* What it builds is accepted by the receiver. */
		expect_ok(&rep);

		frame_reply_hdr(&req, SPILL_ST_ENOEXTENT, 0, &rep);
		assert_int_equal(rep.status, SPILL_ST_ENOEXTENT);
		assert_int_equal(rep.payload_len, 0);
		expect_ok(&rep);
	}
}

static void test_names(void **state)
{
	(void)state;
	assert_string_equal(frame_op_name(SPILL_OP_PING), "ping");
	assert_string_equal(frame_op_name(SPILL_OP_READ), "read");
	assert_string_equal(frame_op_name(SPILL_OP_WRITE), "write");
	assert_string_equal(frame_op_name(SPILL_OP_INVALIDATE), "invalidate");
	assert_string_equal(frame_op_name(SPILL_OP_CTRL), "ctrl");
	assert_string_equal(frame_op_name(SPILL_OP_READ | SPILL_OP_REPLY), "read");
	assert_string_equal(frame_op_name(0), "unknown");
	assert_string_equal(frame_op_name(42), "unknown");
	assert_string_equal(frame_status_name(SPILL_ST_OK), "ok");
}

/* The server checksums READ replies from stored page CRCs: same result. */
static void test_crc_from_pages_matches_seal(void **state)
{
	(void)state;
	enum { N = 5 };
	static uint8_t pages[N * SPILL_PAGE_SIZE], map[SPILL_PRESENT_MAP_BYTES];
	for (size_t i = 0; i < sizeof(pages); i++)
		pages[i] = (uint8_t)rng();
	map[0] = 0x1b;
	uint32_t raw[N];
	crc32c_pages(pages, N, raw);
	struct frame_hdr h = { .op = SPILL_OP_READ | SPILL_OP_REPLY, .req_id = 3, .npages = N,
			       .payload_len = sizeof(pages) };
	struct spill_wire_hdr w;
	frame_hdr_pack(&h, &w);
	struct iovec iov[2] = { { map, sizeof(map) }, { pages, sizeof(pages) } };
	assert_int_equal(frame_crc_from_pages(&w, NULL, 0, raw, N), frame_crc(&w, &iov[1], 1));
	h.flags = SPILL_WF_PRESENT_MAP;
	h.payload_len += sizeof(map);
	frame_hdr_pack(&h, &w);
	assert_int_equal(frame_crc_from_pages(&w, map, sizeof(map), raw, N), frame_crc(&w, iov, 2));
}

int main(void)
{
	rng_state = UINT64_C(0x9e3779b97f4a7c15);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crc_from_pages_matches_seal),
		cmocka_unit_test(test_roundtrip_requests),
		cmocka_unit_test(test_roundtrip_replies),
		cmocka_unit_test(test_wire_byte_order),
		cmocka_unit_test(test_reject_bad_magic),
		cmocka_unit_test(test_reject_version),
		cmocka_unit_test(test_write_version_only_on_writes),
		cmocka_unit_test(test_reject_unknown_op),
		cmocka_unit_test(test_reject_unknown_flags),
		cmocka_unit_test(test_reject_flags_on_request),
		cmocka_unit_test(test_reject_status_on_request),
		cmocka_unit_test(test_reject_npages),
		cmocka_unit_test(test_reject_write_payload),
		cmocka_unit_test(test_reject_payload_on_bodyless),
		cmocka_unit_test(test_reject_ctrl_payload),
		cmocka_unit_test(test_key_reply_payload),
		cmocka_unit_test(test_reject_payload_too_large),
		cmocka_unit_test(test_reject_reply_status),
		cmocka_unit_test(test_reject_read_reply_mismatch),
		cmocka_unit_test(test_crc_seal_verify),
		cmocka_unit_test(test_crc_no_payload),
		cmocka_unit_test(test_crc_split_iovecs),
		cmocka_unit_test(test_status_errno_map),
		cmocka_unit_test(test_reply_hdr),
		cmocka_unit_test(test_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
