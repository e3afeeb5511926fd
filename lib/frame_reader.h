/* SPDX-License-Identifier: MIT */
/*
 * The incremental frame reader both ends use (server/net/conn.c,
 * lib/client.c): bytes from a stream in, whole checked frames out.
 *
 * States: the 40-byte header is assembled (from a 64 KiB staging buffer),
 * then checked with frame_hdr_unpack (bad_header hears why it failed); then the owner's land callback says
 * where the payload goes: a set of up to FRAME_LAND_SEGS segments whose
 * lengths add up to payload_len (its own buffer, an extent's pages, a
 * caller's pages), or "not yet" (FRAME_LAND_WAIT: the reader keeps the
 * header until frame_reader_land is called again), or a refusal (-errno).
 * The payload is then received into those segments, through the stage, or
 * straight from the stream once at least FRAME_READER_DIRECT_MIN bytes of a
 * segment are left (no copy for large payloads). Once it is whole, the CRC
 * is checked (frame_verify, or, when the landing asked for page CRCs, one
 * pass over the pages that also yields each page's CRC), and the done
 * callback gets the frame and the verdict. Per frame: no allocation, no
 * copy beyond the stage, and the same receives as a hand-written reader.
 *
 * Where a payload lands is decided once per frame, by the owner, in land:
 * that is the one place to choose between receiving in place and receiving
 * into a staging buffer first (e.g. to never overwrite acknowledged data
 * with a frame that is not yet whole and checked).
 *
 * Callbacks return 0 to go on; anything else stops the reader and is
 * returned by the call that ran them (the reader then stays stopped:
 * frame_reader_failed). The owner may also pause it between steps with the
 * optional more callback (consulted before every step of the stage).
 *
 * The stage is allocated on the first receive into it and freed by
 * frame_reader_trim (once empty) or frame_reader_free.
 */
#ifndef SPILLWAY_FRAME_READER_H
#define SPILLWAY_FRAME_READER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "frame.h"

struct stream;

#define FRAME_READER_STAGE_BYTES (64 * 1024)
#define FRAME_READER_DIRECT_MIN  (16 * 1024) /* segment left: received without staging */
#define FRAME_LAND_SEGS          3
#define FRAME_LAND_WAIT          1           /* land: keep the header, ask again later */

/* Where a payload lands: filled by the land callback. */
struct frame_land {
	struct iovec seg[FRAME_LAND_SEGS];
	int nseg;
	/* Set: the payload is h->npages whole pages in seg[0]; the CRC check
	 * computes each page's CRC into page_crc[] and checks the frame from
	 * them (frame_crc_from_pages). NULL: frame_verify over the segments. */
	uint32_t *page_crc;
};

struct frame_reader;

struct frame_reader_ops {
	/* The header fails frame_hdr_unpack, which says why: return the
	 * -errno that stops the reader. NULL: -EPROTO. */
	int (*bad_header)(void *arg, const char *why);
	/* The header is valid (frame_hdr_unpack): fill *l (it starts empty),
	 * or return FRAME_LAND_WAIT or -errno (refused). */
	int (*land)(void *arg, const struct frame_hdr *h, struct frame_land *l);
	/* The payload is whole: crc_err is 0 or -EBADMSG. h and l stay valid
	 * until the next byte is consumed. */
	int (*done)(void *arg, const struct frame_hdr *h, const struct frame_land *l, int crc_err);
	/* NULL, or: may the reader take another step now? */
	int (*more)(void *arg);
};

enum frame_reader_state {
	FRAME_READER_HEADER,   /* assembling the header (hdr_have bytes so far) */
	FRAME_READER_LANDING,  /* header checked; land said FRAME_LAND_WAIT */
	FRAME_READER_PAYLOAD,  /* receiving into land's segments */
	FRAME_READER_FAILED,   /* a callback stopped it */
};

struct frame_reader {
	const struct frame_reader_ops *ops;
	void *arg;
	enum frame_reader_state state;
	int err;                      /* FAILED: what stopped it */
	uint8_t *stage;
	size_t stage_off, stage_len;
	uint8_t hdr_raw[SPILL_WIRE_HDR_SIZE];
	size_t hdr_have;
	struct frame_hdr h;
	struct frame_land land;
	int seg_idx;
	size_t seg_off;
};

void frame_reader_init(struct frame_reader *r, const struct frame_reader_ops *ops, void *arg);
/* Free the stage. */
void frame_reader_free(struct frame_reader *r);
/* Free the stage if it holds nothing (an idle connection keeps no buffer). */
void frame_reader_trim(struct frame_reader *r);

/* Run staged bytes through: 0 when the stage is used up or more() said
 * stop (or land said wait), else what a callback returned. */
int frame_reader_consume(struct frame_reader *r);

/*
 * One receive from s (waiting, bounded by the stream's timeout, if wait):
 * straight into the payload's segment when at least
 * FRAME_READER_DIRECT_MIN of it is left (completing the frame if that was
 * its last byte), else into the stage (not consumed yet). *want is what was
 * asked for: fewer bytes back means the stream is drained for now. Returns
 * bytes received, 0 at end of stream, -EAGAIN / -errno from the stream,
 * -ENOMEM when the stage cannot be allocated, or what the done callback
 * returned.
 */
ssize_t frame_reader_recv(struct frame_reader *r, struct stream *s, int wait, size_t *want);

/* In LANDING state: ask land again. 0 (receiving; call consume for what is
 * staged), FRAME_LAND_WAIT, or what land or done returned. */
int frame_reader_land(struct frame_reader *r);

static inline int frame_reader_staged(const struct frame_reader *r)
{
	return r->stage_off < r->stage_len;
}
static inline int frame_reader_in_payload(const struct frame_reader *r)
{
	return r->state == FRAME_READER_PAYLOAD;
}
/* Nothing of a frame received, nothing staged. */
static inline int frame_reader_idle(const struct frame_reader *r)
{
	return r->state == FRAME_READER_HEADER && r->hdr_have == 0 && !frame_reader_staged(r);
}
/* Part of a frame received (end of stream here cuts a frame). */
static inline int frame_reader_inside(const struct frame_reader *r)
{
	return r->state != FRAME_READER_HEADER || r->hdr_have != 0;
}

#endif
