/* SPDX-License-Identifier: MIT */
/*
 * Shared by the stream fuzz targets (fuzz_server_conn, fuzz_client_rx) and
 * gen_corpus: a byte stream of frames as the fuzzer writes it, and the
 * "reseal" step that lets it reach past the checksum. A frame here is a
 * SPILL_WIRE_HDR_SIZE-byte wire header followed by payload_len bytes, cut short at the end of
 * the input. Resealing recomputes the CRC of every whole frame, so mutations
 * of headers and payloads are judged on their meaning, not rejected for
 * their checksum (the unsealed mode keeps fuzzing the checksum itself).
 */
#ifndef SPILLWAY_FUZZ_STREAM_H
#define SPILLWAY_FUZZ_STREAM_H

#include <endian.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "frame.h"

/* Bytes of the frame starting at p (header + payload, at most avail). */
static inline size_t fuzz_frame_len(const uint8_t *p, size_t avail)
{
	if (avail < SPILL_WIRE_HDR_SIZE)
		return avail;
	struct spill_wire_hdr w;
	memcpy(&w, p, sizeof(w));
	uint64_t len = (uint64_t)SPILL_WIRE_HDR_SIZE + le32toh(w.payload_len);
	return len < avail ? (size_t)len : avail;
}

/* Seal every whole frame of buf in place; a cut last frame stays as it is. */
static inline void fuzz_reseal(uint8_t *buf, size_t len)
{
	size_t off = 0;
	while (off + SPILL_WIRE_HDR_SIZE <= len) {
		size_t n = fuzz_frame_len(buf + off, len - off);
		struct spill_wire_hdr w;
		memcpy(&w, buf + off, sizeof(w));
		if (n < SPILL_WIRE_HDR_SIZE + le32toh(w.payload_len))
			break;
		struct iovec iov = { buf + off + SPILL_WIRE_HDR_SIZE, n - SPILL_WIRE_HDR_SIZE };
		frame_seal(&w, &iov, iov.iov_len ? 1 : 0);
		memcpy(buf + off, &w, sizeof(w));
		off += n;
	}
}

#endif
