/* SPDX-License-Identifier: MIT */
/*
 * Data-plane frame codec: host-order view of struct spill_wire_hdr, the
 * validity rules every receiver applies before acting on a frame, CRC sealing,
 * and the one mapping between wire status codes and errno values.
 */
#ifndef SPILLWAY_FRAME_H
#define SPILLWAY_FRAME_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "wire.h"

struct frame_hdr {
	uint8_t  version;
	uint8_t  flags;
	uint16_t op;
	uint64_t req_id;
	uint64_t extent_id;
	uint32_t page;
	uint16_t npages;
	uint16_t status;
	uint64_t wver;
	uint32_t payload_len;
	uint32_t crc;
};

/* Host order -> wire; crc is written as given (seal afterwards). */
void frame_hdr_pack(const struct frame_hdr *h, struct spill_wire_hdr *w);

/*
 * Wire -> host order, then the structural checks: magic, version, a known op,
 * payload length within bounds and consistent with op and npages.
 * Returns 0, or -EPROTO with *why (if non-NULL) naming the rule broken.
 * The CRC is checked separately once the payload is in (frame_verify).
 */
int frame_hdr_unpack(const struct spill_wire_hdr *w, struct frame_hdr *h,
		     const char **why);

/* CRC32C over header (crc field as zero) and payload pieces. */
uint32_t frame_crc(const struct spill_wire_hdr *w, const struct iovec *iov, int iovcnt);
/* The same CRC from the header, an optional prefix, and the raw CRCs of
 * npages whole pages (crc32c_raw(0, page) each), without reading the pages. */
uint32_t frame_crc_from_pages(const struct spill_wire_hdr *w, const void *prefix,
			      size_t prefix_len, const uint32_t *page_raw, size_t npages);
/* Compute and store the CRC into w. */
void frame_seal(struct spill_wire_hdr *w, const struct iovec *iov, int iovcnt);
/* 0 if the stored CRC matches, -EBADMSG otherwise. */
int frame_verify(const struct spill_wire_hdr *w, const struct iovec *iov, int iovcnt);

/* Fill a reply header for request h: same op|REPLY, req_id, extent, range. */
void frame_reply_hdr(const struct frame_hdr *req, uint16_t status,
		     uint32_t payload_len, struct frame_hdr *reply);

int frame_status_to_errno(uint16_t status);   /* positive errno, 0 for OK */
uint16_t frame_errno_to_status(int err);       /* err positive or negative */
const char *frame_status_name(uint16_t status);
const char *frame_op_name(uint16_t op);

#endif
