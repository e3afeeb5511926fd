/* SPDX-License-Identifier: MIT */
/*
 * The shared frame reader (lib/frame_reader.c), driven through a fake
 * stream that hands out a prepared byte stream in chosen pieces: one byte
 * at a time, odd splits, a header alone then its payload. Asserted is what
 * the callbacks see (headers, where payloads landed, their bytes, the CRC
 * verdict, page CRCs) and where the stream was asked to put bytes, so the
 * zero-copy receive of a large payload straight into its landing is checked
 * too. Failures: a bad CRC, a header the codec refuses, a payload the owner
 * refuses, a landing that does not add up, and "wait" from land.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "crc32c.h"
#include "frame.h"
#include "frame_reader.h"
#include "stream.h"

/* --- a stream over a buffer ------------------------------------------------ */

struct fake {
	struct stream base;
	const uint8_t *data;
	size_t len, off;
	const size_t *pieces;   /* piece sizes, cycled; NULL: as much as asked */
	size_t npieces, next;
	/* Receives: how many, and for the first few where to and how much. */
	void *dst[64];
	size_t asked[64];
	unsigned calls;
};

static ssize_t fake_recv(struct stream *s, void *buf, size_t len)
{
	struct fake *f = (struct fake *)s;
	if (f->calls < 64) {
		f->dst[f->calls] = buf;
		f->asked[f->calls] = len;
	}
	f->calls++;
	if (f->off == f->len)
		return 0;
	size_t n = f->len - f->off;
	if (f->pieces) {
		size_t p = f->pieces[f->next++ % f->npieces];
		if (n > p)
			n = p;
	}
	if (n > len)
		n = len;
	memcpy(buf, f->data + f->off, n);
	f->off += n;
	return (ssize_t)n;
}

static const struct stream_ops fake_ops = { .recv = fake_recv, .recv_wait = fake_recv };

static void fake_init(struct fake *f, const uint8_t *data, size_t len, const size_t *pieces,
		      size_t npieces)
{
	memset(f, 0, sizeof(*f));
	f->base.ops = &fake_ops;
	f->data = data;
	f->len = len;
	f->pieces = pieces;
	f->npieces = npieces;
}

/* --- frames ------------------------------------------------------------- */

#define MAXBUF (4u << 20)

struct wire {
	uint8_t *buf;
	size_t len;
};

/* Append one sealed frame; returns its header's offset. */
static size_t add_frame(struct wire *w, uint16_t op, uint64_t req_id, uint16_t npages,
			const uint8_t *payload, uint32_t payload_len)
{
	struct frame_hdr h = { .version = SPILL_WIRE_VERSION, .op = op, .req_id = req_id,
			       .extent_id = 7, .npages = npages, .payload_len = payload_len };
	struct spill_wire_hdr hw;
	frame_hdr_pack(&h, &hw);
	struct iovec iov = { (void *)payload, payload_len };
	frame_seal(&hw, &iov, payload_len ? 1 : 0);
	assert_true(w->len + sizeof(hw) + payload_len <= MAXBUF);
	size_t at = w->len;
	memcpy(w->buf + w->len, &hw, sizeof(hw));
	if (payload_len)
		memcpy(w->buf + w->len + sizeof(hw), payload, payload_len);
	w->len += sizeof(hw) + payload_len;
	return at;
}

static void fill(uint8_t *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(i * 131u + seed * 7u + (i >> 9));
}

/* --- an owner that records what it sees ------------------------------------ */

#define MAXFRAMES 16

struct owner {
	/* Choices. */
	int in_place;            /* WRITE payloads land in pages[], with page CRCs */
	int refuse;              /* land answers this (-errno), 0: accept */
	int wait_first;          /* land answers FRAME_LAND_WAIT once per frame */
	int short_landing;       /* land gives one byte less than the payload */
	int done_rc;             /* done answers this on a bad CRC */
	/* Where payloads land. */
	uint8_t *staging;
	uint8_t *pages;
	uint32_t page_crc[SPILL_MAX_BATCH_PAGES];
	/* Seen. */
	struct frame_hdr landed[MAXFRAMES];
	unsigned nland, nwait;
	struct frame_hdr got[MAXFRAMES];
	void *got_at[MAXFRAMES];
	uint8_t *got_copy[MAXFRAMES];
	int got_crc[MAXFRAMES];
	unsigned ndone;
	const char *bad_why;
	int waited;
};

static int o_bad_header(void *arg, const char *why)
{
	struct owner *o = arg;
	o->bad_why = why;
	return -EPROTO;
}

static int o_land(void *arg, const struct frame_hdr *h, struct frame_land *l)
{
	struct owner *o = arg;
	assert_true(l->nseg == 0 && l->page_crc == NULL); /* starts empty */
	if (o->wait_first && !o->waited) {
		o->waited = 1;
		o->nwait++;
		return FRAME_LAND_WAIT;
	}
	o->waited = 0;
	assert_true(o->nland < MAXFRAMES);
	o->landed[o->nland++] = *h;
	if (o->refuse)
		return o->refuse;
	if (!h->payload_len)
		return 0;
	if (o->in_place && h->op == SPILL_OP_WRITE) {
		l->seg[0] = (struct iovec){ o->pages, h->payload_len };
		l->page_crc = o->page_crc;
	} else {
		l->seg[0] = (struct iovec){ o->staging, h->payload_len - (o->short_landing ? 1 : 0) };
	}
	l->nseg = 1;
	return 0;
}

static int o_done(void *arg, const struct frame_hdr *h, const struct frame_land *l, int crc_err)
{
	struct owner *o = arg;
	assert_true(o->ndone < MAXFRAMES);
	unsigned i = o->ndone++;
	o->got[i] = *h;
	o->got_at[i] = l->nseg ? l->seg[0].iov_base : NULL;
	o->got_crc[i] = crc_err;
	if (h->payload_len) {
		o->got_copy[i] = malloc(h->payload_len);
		assert_non_null(o->got_copy[i]);
		memcpy(o->got_copy[i], l->seg[0].iov_base, h->payload_len);
	}
	return crc_err ? o->done_rc : 0;
}

static const struct frame_reader_ops owner_ops = {
	.bad_header = o_bad_header, .land = o_land, .done = o_done,
};

static void owner_init(struct owner *o)
{
	memset(o, 0, sizeof(*o));
	o->staging = malloc(SPILL_MAX_CTRL_PAYLOAD + 2 * SPILL_MAX_BATCH_PAGES * SPILL_PAGE_SIZE);
	o->pages = malloc((size_t)SPILL_MAX_BATCH_PAGES * SPILL_PAGE_SIZE);
	assert_non_null(o->staging);
	assert_non_null(o->pages);
	o->done_rc = -EBADMSG;
}

static void owner_free(struct owner *o)
{
	for (unsigned i = 0; i < o->ndone; i++)
		free(o->got_copy[i]);
	free(o->staging);
	free(o->pages);
}

/* A test's parts: the bytes, the owner, the stream over the bytes, the
 * reader. Frames are added to w and owner choices set before rig_go. */
struct rig {
	struct wire w;
	struct owner o;
	struct fake f;
	struct frame_reader r;
};

static struct rig *rig_new(void)
{
	struct rig *g = calloc(1, sizeof(*g));
	assert_non_null(g);
	g->w.buf = malloc(MAXBUF);
	assert_non_null(g->w.buf);
	owner_init(&g->o);
	return g;
}

/* Start reading w from its beginning, in pieces. */
static void rig_go(struct rig *g, const size_t *pieces, size_t npieces)
{
	fake_init(&g->f, g->w.buf, g->w.len, pieces, npieces);
	frame_reader_init(&g->r, &owner_ops, &g->o);
}

/* Forget what the owner saw and stop reading (the bytes stay). */
static void rig_reset(struct rig *g)
{
	frame_reader_free(&g->r);
	owner_free(&g->o);
	owner_init(&g->o);
}

static void rig_free(struct rig *g)
{
	frame_reader_free(&g->r);
	owner_free(&g->o);
	free(g->w.buf);
	free(g);
}

/* Drive the reader until end of stream or an error. */
static int pump(struct rig *g)
{
	for (;;) {
		int rc = frame_reader_consume(&g->r);
		if (rc)
			return rc;
		size_t want;
		ssize_t n = frame_reader_recv(&g->r, &g->f.base, 0, &want);
		if (n > 0)
			continue;
		return (int)n; /* 0: end of stream */
	}
}

/* --- tests -------------------------------------------------------------- */

/* A mixed stream: control, ping, a 16-page WRITE, a 1-page WRITE, control,
 * read in pieces; WRITEs land in the owner's pages if in_place. */
static void run_mixed(const size_t *pieces, size_t npieces, int in_place)
{
	uint8_t ctrl[300];
	uint8_t *big = malloc(16 * SPILL_PAGE_SIZE), *small = malloc(SPILL_PAGE_SIZE);
	fill(ctrl, sizeof(ctrl), 1);
	fill(big, 16 * SPILL_PAGE_SIZE, 2);
	fill(small, SPILL_PAGE_SIZE, 3);
	struct rig *g = rig_new();
	add_frame(&g->w, SPILL_OP_CTRL, 1, 0, ctrl, sizeof(ctrl));
	add_frame(&g->w, SPILL_OP_PING, 2, 0, NULL, 0);
	add_frame(&g->w, SPILL_OP_WRITE, 3, 16, big, 16 * SPILL_PAGE_SIZE);
	add_frame(&g->w, SPILL_OP_WRITE, 4, 1, small, SPILL_PAGE_SIZE);
	add_frame(&g->w, SPILL_OP_CTRL, 5, 0, ctrl, sizeof(ctrl));
	g->o.in_place = in_place;
	rig_go(g, pieces, npieces);
	assert_int_equal(pump(g), 0);

	const struct owner *o = &g->o;
	assert_int_equal(o->nland, 5);
	assert_int_equal(o->ndone, 5);
	static const uint16_t ops[] = { SPILL_OP_CTRL, SPILL_OP_PING, SPILL_OP_WRITE,
					SPILL_OP_WRITE, SPILL_OP_CTRL };
	for (unsigned i = 0; i < 5; i++) {
		assert_int_equal(o->landed[i].op, ops[i]);
		assert_int_equal(o->got[i].op, ops[i]);
		assert_true(o->got[i].req_id == i + 1);
		assert_int_equal(o->got_crc[i], 0);
	}
	assert_memory_equal(o->got_copy[0], ctrl, sizeof(ctrl));
	assert_null(o->got_at[1]);
	assert_memory_equal(o->got_copy[2], big, 16 * SPILL_PAGE_SIZE);
	assert_memory_equal(o->got_copy[3], small, SPILL_PAGE_SIZE);
	assert_memory_equal(o->got_copy[4], ctrl, sizeof(ctrl));
	assert_true(frame_reader_idle(&g->r));
	if (in_place) {
		/* Both WRITEs landed in the pages, the page CRCs came with the
		 * check: those of the last one, page 0. */
		assert_ptr_equal(o->got_at[2], o->pages);
		assert_ptr_equal(o->got_at[3], o->pages);
		assert_int_equal(o->page_crc[0], crc32c_raw(0, small, SPILL_PAGE_SIZE));
	} else {
		assert_ptr_equal(o->got_at[2], o->staging);
	}
	rig_free(g);
	free(big);
	free(small);
}

static void test_byte_by_byte(void **state)
{
	(void)state;
	static const size_t one[] = { 1 };
	run_mixed(one, 1, 0);
	run_mixed(one, 1, 1);
}

static void test_odd_splits(void **state)
{
	(void)state;
	static const size_t odd[] = { 7, 13, 39, 41, 4097, 3, 20000, 65536, 17 };
	static const size_t big[] = { 70000, 5, 123457 };
	run_mixed(odd, sizeof(odd) / sizeof(odd[0]), 0);
	run_mixed(odd, sizeof(odd) / sizeof(odd[0]), 1);
	run_mixed(big, sizeof(big) / sizeof(big[0]), 1);
	run_mixed(NULL, 0, 0); /* as much as the reader asks for */
	run_mixed(NULL, 0, 1);
}

/* A header alone, then its 16 pages: the pages are received straight into
 * their landing (no staging), in one receive, and the frame is whole then. */
static void test_in_place_direct(void **state)
{
	(void)state;
	uint8_t *big = malloc(16 * SPILL_PAGE_SIZE);
	fill(big, 16 * SPILL_PAGE_SIZE, 9);
	struct rig *g = rig_new();
	add_frame(&g->w, SPILL_OP_WRITE, 11, 16, big, 16 * SPILL_PAGE_SIZE);
	static const size_t pieces[] = { SPILL_WIRE_HDR_SIZE, 16 * SPILL_PAGE_SIZE };
	g->o.in_place = 1;
	rig_go(g, pieces, 2);
	assert_int_equal(pump(g), 0);
	assert_int_equal(g->o.ndone, 1);
	assert_int_equal(g->o.got_crc[0], 0);
	assert_memory_equal(g->o.pages, big, 16 * SPILL_PAGE_SIZE);
	/* Receives: the header into the stage, the pages in place, then the
	 * one that sees the end of the stream. */
	assert_int_equal(g->f.calls, 3);
	assert_ptr_equal(g->f.dst[0], g->r.stage);
	assert_ptr_equal(g->f.dst[1], g->o.pages);
	assert_int_equal(g->f.asked[1], 16 * SPILL_PAGE_SIZE);
	for (unsigned i = 0; i < 16; i++)
		assert_int_equal(g->o.page_crc[i],
				 crc32c_raw(0, big + i * SPILL_PAGE_SIZE, SPILL_PAGE_SIZE));
	rig_free(g);
	free(big);
}

/* One flipped payload bit: done hears -EBADMSG (staged and in place, with
 * page CRCs), and what it answers stops the reader for good. */
static void test_bad_crc(void **state)
{
	(void)state;
	uint8_t *pages = malloc(4 * SPILL_PAGE_SIZE);
	fill(pages, 4 * SPILL_PAGE_SIZE, 4);
	static const size_t pieces[] = { 333 };
	for (int in_place = 0; in_place < 2; in_place++) {
		struct rig *g = rig_new();
		size_t at = add_frame(&g->w, SPILL_OP_WRITE, 1, 4, pages, 4 * SPILL_PAGE_SIZE);
		add_frame(&g->w, SPILL_OP_PING, 2, 0, NULL, 0);
		g->w.buf[at + SPILL_WIRE_HDR_SIZE + 5000] ^= 0x10;
		g->o.in_place = in_place;
		rig_go(g, pieces, 1);
		assert_int_equal(pump(g), -EBADMSG);
		assert_int_equal(g->o.ndone, 1);
		assert_int_equal(g->o.got_crc[0], -EBADMSG);
		assert_int_equal(g->r.state, FRAME_READER_FAILED);
		assert_int_equal(frame_reader_consume(&g->r), -EBADMSG);
		size_t want;
		assert_int_equal(frame_reader_recv(&g->r, &g->f.base, 0, &want), -EBADMSG);
		assert_int_equal(g->o.ndone, 1); /* the PING behind it is never seen */
		/* An owner that shrugs it off goes on to the next frame. */
		rig_reset(g);
		g->o.in_place = in_place;
		g->o.done_rc = 0;
		rig_go(g, pieces, 1);
		assert_int_equal(pump(g), 0);
		assert_int_equal(g->o.ndone, 2);
		assert_int_equal(g->o.got_crc[0], -EBADMSG);
		assert_int_equal(g->o.got_crc[1], 0);
		rig_free(g);
	}
	free(pages);
}

/* A header the codec refuses: bad_header hears why, land never runs for
 * it, and the reader stops with what bad_header answered. */
static void bad_header_case(size_t field, uint8_t value, const char *why)
{
	struct rig *g = rig_new();
	add_frame(&g->w, SPILL_OP_PING, 1, 0, NULL, 0);
	size_t at = add_frame(&g->w, SPILL_OP_PING, 2, 0, NULL, 0);
	add_frame(&g->w, SPILL_OP_PING, 3, 0, NULL, 0);
	g->w.buf[at + field] = value;
	static const size_t one[] = { 1 };
	rig_go(g, one, 1);
	assert_int_equal(pump(g), -EPROTO);
	assert_non_null(g->o.bad_why);
	assert_string_equal(g->o.bad_why, why);
	assert_int_equal(g->o.nland, 1);
	assert_int_equal(g->o.ndone, 1);
	assert_int_equal(g->f.off, at + SPILL_WIRE_HDR_SIZE); /* not a byte further */
	assert_true(frame_reader_inside(&g->r));
	rig_free(g);
}

static void test_bad_header(void **state)
{
	(void)state;
	bad_header_case(offsetof(struct spill_wire_hdr, magic), 0xee, "bad magic");
	bad_header_case(offsetof(struct spill_wire_hdr, version), 99, "unsupported version");
}

/* land refuses: the reader stops with its -errno, done never runs, and no
 * byte of the payload is received anywhere. */
static void test_refused(void **state)
{
	(void)state;
	uint8_t *pages = malloc(8 * SPILL_PAGE_SIZE);
	fill(pages, 8 * SPILL_PAGE_SIZE, 5);
	struct rig *g = rig_new();
	add_frame(&g->w, SPILL_OP_WRITE, 1, 8, pages, 8 * SPILL_PAGE_SIZE);
	static const size_t pieces[] = { SPILL_WIRE_HDR_SIZE };
	g->o.refuse = -EACCES;
	rig_go(g, pieces, 1);
	assert_int_equal(pump(g), -EACCES);
	assert_int_equal(g->o.nland, 1);
	assert_int_equal(g->o.landed[0].npages, 8);
	assert_int_equal(g->o.ndone, 0);
	assert_int_equal(g->f.calls, 1);
	assert_int_equal(g->f.off, SPILL_WIRE_HDR_SIZE);
	rig_free(g);
	free(pages);
}

/* A landing that does not add up to payload_len is a protocol error. */
static void test_short_landing(void **state)
{
	(void)state;
	uint8_t ctrl[100];
	fill(ctrl, sizeof(ctrl), 6);
	struct rig *g = rig_new();
	add_frame(&g->w, SPILL_OP_CTRL, 1, 0, ctrl, sizeof(ctrl));
	g->o.short_landing = 1;
	rig_go(g, NULL, 0);
	assert_int_equal(pump(g), -EPROTO);
	assert_int_equal(g->o.ndone, 0);
	rig_free(g);
}

/* land says wait: the header is kept, consuming stops, nothing more is
 * taken from the stage until frame_reader_land is called again. */
static void test_land_wait(void **state)
{
	(void)state;
	uint8_t ctrl[200];
	fill(ctrl, sizeof(ctrl), 8);
	struct rig *g = rig_new();
	add_frame(&g->w, SPILL_OP_CTRL, 1, 0, ctrl, sizeof(ctrl));
	add_frame(&g->w, SPILL_OP_PING, 2, 0, NULL, 0);
	g->o.wait_first = 1;
	rig_go(g, NULL, 0);
	struct frame_reader *r = &g->r;
	size_t want;
	assert_int_equal(frame_reader_recv(r, &g->f.base, 0, &want), (ssize_t)g->w.len);
	assert_int_equal(want, FRAME_READER_STAGE_BYTES);
	assert_int_equal(frame_reader_consume(r), 0);
	assert_int_equal(g->o.nwait, 1);
	assert_int_equal(g->o.nland, 0);
	assert_int_equal(r->state, FRAME_READER_LANDING);
	assert_int_equal(r->stage_off, SPILL_WIRE_HDR_SIZE);
	assert_int_equal(frame_reader_consume(r), 0); /* still waits */
	assert_int_equal(r->stage_off, SPILL_WIRE_HDR_SIZE);
	assert_int_equal(frame_reader_land(r), 0);
	assert_int_equal(g->o.nland, 1);
	assert_true(frame_reader_in_payload(r));
	assert_int_equal(frame_reader_consume(r), 0);
	/* The PING waited once too, then both were done. */
	assert_int_equal(g->o.nwait, 2);
	assert_int_equal(frame_reader_land(r), 0);
	assert_int_equal(g->o.ndone, 2);
	assert_memory_equal(g->o.got_copy[0], ctrl, sizeof(ctrl));
	assert_int_equal(g->o.got[1].op, SPILL_OP_PING);
	assert_true(frame_reader_idle(r));
	frame_reader_trim(r);
	assert_null(r->stage);
	rig_free(g);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_byte_by_byte),
		cmocka_unit_test(test_odd_splits),
		cmocka_unit_test(test_in_place_direct),
		cmocka_unit_test(test_bad_crc),
		cmocka_unit_test(test_bad_header),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_short_landing),
		cmocka_unit_test(test_land_wait),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
