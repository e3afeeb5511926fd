/* SPDX-License-Identifier: MIT */
/*
 * The transmission phase: requests served in arrival order, one simple reply
 * each. A refused request gets its NBD error and the connection goes on
 * (a WRITE's payload is read and dropped first); only a request with a bad
 * magic, a socket error or a timeout ends it.
 *
 * Data moves through one shared buffer of NBD_BUF_SIZE (nbd_buf.h) per
 * request, in pieces: a 32 MiB READ is read and sent 256 KiB at a time, so
 * memory does not follow request sizes and nothing is kept between requests.
 * A READ's reply header goes out with its first piece; reads of pool memory
 * cannot fail, so a reply once started is always completed with the right
 * bytes (or the connection breaks).
 *
 * Time: between requests the connection may wait c->idle_ms for its first
 * request and c->attached_idle_ms between later ones (0: forever); once a
 * request has begun, each pause (its header and payload arriving, its reply
 * being taken, a buffer coming free) is limited by c->stall_ms.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "nbd_buf.h"
#include "nbd_conn.h"
#include "nbd_export.h"
#include "nbd_io.h"
#include "nbd_log.h"
#include "nbd_parse.h"
#include "nbd_proto.h"
#include "nbd_stats.h"

static int reply(struct nbd_conn *c, uint64_t handle, uint32_t err, const void *data, uint32_t len)
{
	uint8_t h[16];
	nbd_put32(h, NBD_SIMPLE_REPLY_MAGIC);
	nbd_put32(h + 4, err);
	nbd_put64(h + 8, handle);
	if (err) {
		c->errors++;
		atomic_fetch_add(&nbd_stats.request_errors, 1);
	}
	return nbd_send2(&c->io, h, sizeof(h), data, err ? 0 : len);
}

static uint32_t nbd_errno(int rc)
{
	switch (rc) {
	case -ENOSPC:
	case -EDQUOT:
		return NBD_ENOSPC;
	case -ENOMEM:
		return NBD_ENOMEM;
	case -EINVAL:
		return NBD_EINVAL;
	default:
		return NBD_EIO;
	}
}

static uint32_t piece(uint32_t left)
{
	return left < NBD_BUF_SIZE ? left : NBD_BUF_SIZE;
}

/* A WRITE: its payload is always consumed, so the stream stays in step. A
 * piece the export refuses leaves the earlier ones written (NBD makes no
 * promise about a failed write's range). */
static int do_write(struct nbd_conn *c, struct nbd_export *x, const struct nbd_request *r,
		    uint32_t err)
{
	uint8_t *buf = err || !r->len ? NULL : nbd_buf_get(c->stall_ms);
	if (!err && r->len && !buf)
		err = NBD_ENOMEM;
	if (err)
		return nbd_drain(&c->io, r->len) ? -1 : reply(c, r->handle, err, NULL, 0);
	int rc = 0;
	for (uint32_t done = 0; done < r->len;) {
		uint32_t n = piece(r->len - done);
		if (nbd_recv_full(&c->io, buf, n)) {
			nbd_buf_put(buf);
			return -1;
		}
		if (!rc)
			rc = nbd_export_write(x, r->off + done, n, buf);
		done += n;
	}
	if (buf)
		nbd_buf_put(buf);
	return reply(c, r->handle, rc ? nbd_errno(rc) : 0, NULL, 0);
}

static int do_read(struct nbd_conn *c, struct nbd_export *x, const struct nbd_request *r,
		   uint32_t err)
{
	if (err || !r->len)
		return reply(c, r->handle, err, NULL, 0);
	uint8_t *buf = nbd_buf_get(c->stall_ms);
	if (!buf)
		return reply(c, r->handle, NBD_ENOMEM, NULL, 0);
	uint32_t n = piece(r->len);
	nbd_export_read(x, r->off, n, buf); /* pool memory: cannot fail */
	int rc = reply(c, r->handle, 0, buf, n);
	for (uint32_t done = n; !rc && done < r->len; done += n) {
		n = piece(r->len - done);
		nbd_export_read(x, r->off + done, n, buf);
		rc = nbd_send_full(&c->io, buf, n);
	}
	nbd_buf_put(buf);
	return rc;
}

/* One request other than DISC; 0 to go on. */
static int serve(struct nbd_conn *c, struct nbd_export *x, const struct nbd_request *r)
{
	uint32_t err = nbd_request_check(r, nbd_export_size(x), NBD_BLOCK_MAX);
	int rc;
	switch (r->type) {
	case NBD_CMD_READ:
		return do_read(c, x, r, err);
	case NBD_CMD_WRITE:
		return do_write(c, x, r, err);
	case NBD_CMD_FLUSH:
		/* Writes are in server memory before they are acknowledged,
		 * and that memory is all the storage there is. */
		return reply(c, r->handle, err, NULL, 0);
	case NBD_CMD_TRIM:
		rc = err ? 0 : nbd_export_trim(x, r->off, r->len);
		return reply(c, r->handle, err ? err : rc ? nbd_errno(rc) : 0, NULL, 0);
	case NBD_CMD_WRITE_ZEROES:
		rc = err ? 0 : nbd_export_zero(x, r->off, r->len,
					       (r->flags & NBD_CMD_FLAG_NO_HOLE) != 0);
		return reply(c, r->handle, err ? err : rc ? nbd_errno(rc) : 0, NULL, 0);
	default:
		return reply(c, r->handle, err, NULL, 0);
	}
}

void nbd_transmit(struct nbd_conn *c, struct nbd_export *x)
{
	uint8_t rq[NBD_REQUEST_LEN];
	c->io.deadline_ms = 0;
	c->io.stall_ms = c->stall_ms;
	for (;;) {
		if (nbd_recv_idle(&c->io, rq, sizeof(rq), c->requests ? c->attached_idle_ms
								       : c->idle_ms))
			return;
		struct nbd_request r;
		if (nbd_parse_request(rq, &r)) {
			nbd_log_peer("%s: nbd: closing connection: bad request magic", c->peer);
			return;
		}
		c->requests++;
		atomic_fetch_add(&nbd_stats.requests, 1);
		if (r.type == NBD_CMD_DISC || serve(c, x, &r))
			return;
	}
}
