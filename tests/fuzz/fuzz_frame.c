/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the data-plane frame codec.
 *
 * Input: the first 40 bytes are a wire header (zero-padded if shorter), the
 * rest is the payload. frame_hdr_unpack must never crash, must reject with
 * -EPROTO and a reason, and when it accepts, every rule a receiver relies on
 * must hold; otherwise abort(). The CRC functions run over the payload, and
 * a reply the server would build for an accepted request must itself be
 * accepted.
 */
#include <endian.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "fuzz_check.h"

static int is_batch(uint16_t npages)
{
	return npages >= 1 && npages <= SPILL_MAX_BATCH_PAGES;
}

static void check_accepted(const struct spill_wire_hdr *w, const struct frame_hdr *h)
{
	uint16_t op = h->op & ~SPILL_OP_REPLY;
	int reply = (h->op & SPILL_OP_REPLY) != 0;

	CHECK(le32toh(w->magic) == SPILL_WIRE_MAGIC);
	CHECK(h->version == SPILL_WIRE_VERSION);
	CHECK((h->flags & ~SPILL_WF_PRESENT_MAP) == 0);
	CHECK(h->payload_len <= SPILL_MAX_PAYLOAD);
	CHECK(op >= SPILL_OP_PING && op <= SPILL_OP_KEY);
	CHECK(strcmp(frame_op_name(h->op), "unknown") != 0);

	if (!reply) {
		CHECK(h->flags == 0);
		CHECK(h->status == SPILL_ST_OK);
		switch (op) {
		case SPILL_OP_PING:
		case SPILL_OP_ALLOC:
		case SPILL_OP_FREE:
		case SPILL_OP_KEY:
			CHECK(h->payload_len == 0);
			break;
		case SPILL_OP_READ:
		case SPILL_OP_INVALIDATE:
			CHECK(h->payload_len == 0);
			CHECK(is_batch(h->npages));
			break;
		case SPILL_OP_WRITE:
			CHECK(is_batch(h->npages));
			CHECK(h->payload_len == (uint32_t)h->npages * SPILL_PAGE_SIZE);
			break;
		case SPILL_OP_CTRL:
			CHECK(h->payload_len >= 1 && h->payload_len <= SPILL_MAX_CTRL_PAYLOAD);
			break;
		}
	} else {
		CHECK(h->status < SPILL_ST_MAX);
		CHECK(strcmp(frame_status_name(h->status), "unknown status") != 0);
		CHECK(frame_errno_to_status(frame_status_to_errno(h->status)) == h->status);
		if (op == SPILL_OP_CTRL) {
			CHECK(h->payload_len <= SPILL_MAX_CTRL_PAYLOAD);
		} else if (op == SPILL_OP_KEY) {
			CHECK(h->payload_len == (h->status ? 0 : SPILL_WIRE_KEY_SIZE));
		} else if (op == SPILL_OP_READ && h->payload_len) {
			uint32_t want = (uint32_t)h->npages * SPILL_PAGE_SIZE;
			if (h->flags & SPILL_WF_PRESENT_MAP)
				want += SPILL_PRESENT_MAP_BYTES;
			CHECK(is_batch(h->npages));
			CHECK(h->payload_len == want);
		} else {
			CHECK(h->payload_len == 0);
		}
	}

	/* Accepted headers re-pack to the very same bytes. */
	struct spill_wire_hdr w2;
	frame_hdr_pack(h, &w2);
	CHECK(memcmp(&w2, w, sizeof(w2)) == 0);
}

/* The reply the server builds for an accepted request must be accepted. */
static void check_reply_for(const struct frame_hdr *req, uint8_t pick)
{
	if (req->op & SPILL_OP_REPLY)
		return;
	struct frame_hdr rep, back;
	struct spill_wire_hdr w;
	const char *why = NULL;
	uint16_t status = (uint16_t)(pick % SPILL_ST_MAX);

	/* Status only, no payload: legal for every reply but a successful
	 * KEY, which must carry its key. */
	uint32_t plen = (req->op == SPILL_OP_KEY && status == SPILL_ST_OK) ?
			SPILL_WIRE_KEY_SIZE : 0;
	frame_reply_hdr(req, status, plen, &rep);
	CHECK(rep.op == (req->op | SPILL_OP_REPLY));
	CHECK(rep.req_id == req->req_id && rep.extent_id == req->extent_id);
	CHECK(rep.page == req->page && rep.npages == req->npages);
	frame_hdr_pack(&rep, &w);
	if (frame_hdr_unpack(&w, &back, &why)) {
		fprintf(stderr, "reply to op 0x%x rejected: %s\n", req->op, why);
		abort();
	}
	/* A READ answered with its pages, with or without the map. */
	if (req->op == SPILL_OP_READ) {
		frame_reply_hdr(req, SPILL_ST_OK, (uint32_t)req->npages * SPILL_PAGE_SIZE, &rep);
		frame_hdr_pack(&rep, &w);
		CHECK(frame_hdr_unpack(&w, &back, &why) == 0);
		frame_reply_hdr(req, SPILL_ST_ABSENT,
				(uint32_t)req->npages * SPILL_PAGE_SIZE + SPILL_PRESENT_MAP_BYTES,
				&rep);
		rep.flags = SPILL_WF_PRESENT_MAP;
		frame_hdr_pack(&rep, &w);
		CHECK(frame_hdr_unpack(&w, &back, &why) == 0);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct spill_wire_hdr w;
	struct frame_hdr h;
	const char *why = NULL;

	memset(&w, 0, sizeof(w));
	memcpy(&w, data, size < sizeof(w) ? size : sizeof(w));
	const uint8_t *payload = size > sizeof(w) ? data + sizeof(w) : NULL;
	size_t plen = size > sizeof(w) ? size - sizeof(w) : 0;

	int rc = frame_hdr_unpack(&w, &h, &why);
	if (rc) {
		CHECK(rc == -EPROTO);
		CHECK(why != NULL && why[0] != '\0');
	} else {
		check_accepted(&w, &h);
		check_reply_for(&h, payload ? payload[0] : (uint8_t)size);
	}

	/* CRC: one piece or two gives the same answer, and sealing makes the
	 * frame verify whatever it holds. */
	struct iovec one = { (void *)payload, plen };
	int v1 = frame_verify(&w, &one, 1);
	CHECK(v1 == 0 || v1 == -EBADMSG);
	size_t split = plen ? (size_t)payload[0] % (plen + 1) : 0;
	struct iovec two[2] = { { (void *)payload, split },
				{ (void *)(payload ? payload + split : NULL), plen - split } };
	uint32_t c1 = frame_crc(&w, &one, 1);
	CHECK(frame_crc(&w, two, 2) == c1);
	CHECK(frame_verify(&w, two, 2) == v1);
	CHECK((v1 == 0) == (le32toh(w.crc) == c1));
	struct spill_wire_hdr sealed = w;
	frame_seal(&sealed, two, 2);
	CHECK(le32toh(sealed.crc) == c1);
	CHECK(frame_verify(&sealed, &one, 1) == 0);
	return 0;
}
