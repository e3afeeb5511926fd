/* SPDX-License-Identifier: MIT */
/*
 * The incremental frame reader of frame_reader.h: header, landing, payload,
 * check. Invariants: in PAYLOAD the landing's segments add up to the
 * header's payload_len, and seg_idx/seg_off say how far they are filled;
 * the stage is only refilled once it is used up.
 */
#include "frame_reader.h"

#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "crc32c.h"
#include "stream.h"

void frame_reader_init(struct frame_reader *r, const struct frame_reader_ops *ops, void *arg)
{
	memset(r, 0, sizeof(*r));
	r->ops = ops;
	r->arg = arg;
	r->state = FRAME_READER_HEADER;
}

void frame_reader_free(struct frame_reader *r)
{
	free(r->stage);
	r->stage = NULL;
	r->stage_off = r->stage_len = 0;
}

void frame_reader_trim(struct frame_reader *r)
{
	if (r->stage && !frame_reader_staged(r))
		frame_reader_free(r);
}

static int stop(struct frame_reader *r, int rc)
{
	r->state = FRAME_READER_FAILED;
	r->err = rc;
	return rc;
}

/* The payload is whole: check it, then hand the frame over. */
static int finish(struct frame_reader *r)
{
	const struct spill_wire_hdr *w = (const struct spill_wire_hdr *)r->hdr_raw;
	const struct frame_land *l = &r->land;
	int bad;
	if (l->page_crc) {
		/* One pass over the pages gives both the check and their CRCs. */
		crc32c_pages(l->seg[0].iov_base, r->h.npages, l->page_crc);
		bad = frame_crc_from_pages(w, NULL, 0, l->page_crc, r->h.npages) != le32toh(w->crc);
	} else {
		bad = frame_verify(w, l->seg, l->nseg) != 0;
	}
	r->state = FRAME_READER_HEADER;
	r->hdr_have = 0;
	int rc = r->ops->done(r->arg, &r->h, l, bad ? -EBADMSG : 0);
	return rc ? stop(r, rc) : 0;
}

/* Step past filled segments; finish the frame after the last. */
static int advance(struct frame_reader *r)
{
	while (r->seg_idx < r->land.nseg && r->seg_off == r->land.seg[r->seg_idx].iov_len) {
		r->seg_idx++;
		r->seg_off = 0;
	}
	return r->seg_idx == r->land.nseg ? finish(r) : 0;
}

int frame_reader_land(struct frame_reader *r)
{
	if (r->state != FRAME_READER_LANDING)
		return r->state == FRAME_READER_FAILED ? r->err : 0;
	memset(&r->land, 0, sizeof(r->land));
	int rc = r->ops->land(r->arg, &r->h, &r->land);
	if (rc == FRAME_LAND_WAIT)
		return rc;
	if (rc)
		return stop(r, rc);
	size_t total = 0;
	for (int i = 0; i < r->land.nseg; i++)
		total += r->land.seg[i].iov_len;
	if (total != r->h.payload_len || r->land.nseg > FRAME_LAND_SEGS)
		return stop(r, -EPROTO);
	r->state = FRAME_READER_PAYLOAD;
	r->seg_idx = 0;
	r->seg_off = 0;
	return advance(r); /* an empty payload is whole already */
}

/* The header is complete: check it, then ask where its payload goes. */
static int start(struct frame_reader *r)
{
	const char *why;
	if (frame_hdr_unpack((const struct spill_wire_hdr *)r->hdr_raw, &r->h, &why))
		return stop(r, r->ops->bad_header ? r->ops->bad_header(r->arg, why) : -EPROTO);
	r->state = FRAME_READER_LANDING;
	return frame_reader_land(r);
}

int frame_reader_consume(struct frame_reader *r)
{
	while (r->stage_off < r->stage_len && (!r->ops->more || r->ops->more(r->arg))) {
		size_t avail = r->stage_len - r->stage_off;
		const uint8_t *p = r->stage + r->stage_off;
		int rc;
		if (r->state == FRAME_READER_HEADER) {
			size_t n = SPILL_WIRE_HDR_SIZE - r->hdr_have;
			if (n > avail)
				n = avail;
			memcpy(r->hdr_raw + r->hdr_have, p, n);
			r->hdr_have += n;
			r->stage_off += n;
			if (r->hdr_have < SPILL_WIRE_HDR_SIZE)
				continue;
			rc = start(r);
		} else if (r->state == FRAME_READER_PAYLOAD) {
			struct iovec *g = &r->land.seg[r->seg_idx];
			size_t n = g->iov_len - r->seg_off;
			if (n > avail)
				n = avail;
			memcpy((uint8_t *)g->iov_base + r->seg_off, p, n);
			r->seg_off += n;
			r->stage_off += n;
			rc = advance(r);
		} else {
			/* LANDING waits for frame_reader_land; FAILED for nothing. */
			return r->state == FRAME_READER_FAILED ? r->err : 0;
		}
		if (rc == FRAME_LAND_WAIT)
			return 0;
		if (rc)
			return rc;
	}
	if (r->stage_off == r->stage_len)
		r->stage_off = r->stage_len = 0;
	return r->state == FRAME_READER_FAILED ? r->err : 0;
}

ssize_t frame_reader_recv(struct frame_reader *r, struct stream *s, int wait, size_t *want)
{
	if (r->state == FRAME_READER_FAILED)
		return r->err;
	if (r->state == FRAME_READER_PAYLOAD) {
		struct iovec *g = &r->land.seg[r->seg_idx];
		size_t left = g->iov_len - r->seg_off;
		if (left >= FRAME_READER_DIRECT_MIN) {
			/* Large payload: straight into its destination. */
			void *dst = (uint8_t *)g->iov_base + r->seg_off;
			*want = left;
			ssize_t n = wait ? stream_recv_wait(s, dst, left) : stream_recv(s, dst, left);
			if (n > 0) {
				r->seg_off += (size_t)n;
				int rc = advance(r);
				if (rc)
					return rc;
			}
			return n;
		}
	}
	*want = FRAME_READER_STAGE_BYTES;
	if (!r->stage && !(r->stage = malloc(FRAME_READER_STAGE_BYTES)))
		return -ENOMEM;
	ssize_t n = wait ? stream_recv_wait(s, r->stage, FRAME_READER_STAGE_BYTES)
			 : stream_recv(s, r->stage, FRAME_READER_STAGE_BYTES);
	if (n > 0) {
		r->stage_off = 0;
		r->stage_len = (size_t)n;
	}
	return n;
}
