/* SPDX-License-Identifier: MIT */
/*
 * The transmission phase: requests served in arrival order, one simple reply
 * each. A refused request gets its NBD error and the connection goes on
 * (a WRITE's payload is read and dropped first); only a request with a bad
 * magic, or a socket error, ends it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "nbd_conn.h"
#include "nbd_export.h"
#include "nbd_io.h"
#include "nbd_proto.h"

#define KNOWN_FLAGS (NBD_CMD_FLAG_FUA | NBD_CMD_FLAG_NO_HOLE | NBD_CMD_FLAG_DF | \
		     NBD_CMD_FLAG_FAST_ZERO)

static int reply(struct nbd_conn *c, uint64_t handle, uint32_t err, const void *data, uint32_t len)
{
	uint8_t h[16];
	nbd_put32(h, NBD_SIMPLE_REPLY_MAGIC);
	nbd_put32(h + 4, err);
	nbd_put64(h + 8, handle);
	if (err)
		c->errors++;
	return nbd_send2(c->fd, h, sizeof(h), data, err ? 0 : len);
}

static int grow(struct nbd_conn *c, uint32_t len)
{
	if (len <= c->buf_cap)
		return 0;
	uint8_t *b = realloc(c->buf, len);
	if (!b)
		return -ENOMEM;
	c->buf = b;
	c->buf_cap = len;
	return 0;
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

/* A WRITE: its payload is always consumed, so the stream stays in step. */
static int do_write(struct nbd_conn *c, struct nbd_export *x, uint64_t handle, uint16_t flags,
		    uint64_t off, uint32_t len)
{
	uint64_t size = nbd_export_size(x);
	uint32_t err = 0;
	if (flags & ~KNOWN_FLAGS || len > NBD_BLOCK_MAX)
		err = NBD_EINVAL;
	else if (off > size || len > size - off)
		err = NBD_ENOSPC; /* the spec's answer for a write past the end */
	else if (grow(c, len))
		err = NBD_ENOMEM;
	if (err)
		return nbd_drain(c->fd, len) ? -1 : reply(c, handle, err, NULL, 0);
	if (nbd_recv_full(c->fd, c->buf, len))
		return -1;
	int rc = nbd_export_write(x, off, len, c->buf);
	return reply(c, handle, rc ? nbd_errno(rc) : 0, NULL, 0);
}

static int do_read(struct nbd_conn *c, struct nbd_export *x, uint64_t handle, uint16_t flags,
		   uint64_t off, uint32_t len)
{
	uint64_t size = nbd_export_size(x);
	if (flags & ~KNOWN_FLAGS || len > NBD_BLOCK_MAX || off > size || len > size - off)
		return reply(c, handle, NBD_EINVAL, NULL, 0);
	if (grow(c, len))
		return reply(c, handle, NBD_ENOMEM, NULL, 0);
	int rc = nbd_export_read(x, off, len, c->buf);
	return reply(c, handle, rc ? nbd_errno(rc) : 0, c->buf, len);
}

void nbd_transmit(struct nbd_conn *c, struct nbd_export *x)
{
	uint8_t rq[28];
	for (;;) {
		if (nbd_recv_full(c->fd, rq, sizeof(rq)))
			return;
		if (nbd_get32(rq) != NBD_REQUEST_MAGIC) {
			log_warn("%s: nbd: closing connection: bad request magic", c->peer);
			return;
		}
		uint16_t flags = nbd_get16(rq + 4), type = nbd_get16(rq + 6);
		uint64_t handle = nbd_get64(rq + 8), off = nbd_get64(rq + 16);
		uint32_t len = nbd_get32(rq + 24);
		uint64_t size = nbd_export_size(x);
		int in_bounds = off <= size && len <= size - off;
		int rc = 0;
		c->requests++;
		switch (type) {
		case NBD_CMD_READ:
			rc = do_read(c, x, handle, flags, off, len);
			break;
		case NBD_CMD_WRITE:
			rc = do_write(c, x, handle, flags, off, len);
			break;
		case NBD_CMD_DISC:
			return;
		case NBD_CMD_FLUSH:
			/* Writes are in server memory before they are acknowledged,
			 * and that memory is all the storage there is. */
			rc = reply(c, handle, flags & ~KNOWN_FLAGS ? NBD_EINVAL : 0, NULL, 0);
			break;
		case NBD_CMD_TRIM:
			if (flags & ~KNOWN_FLAGS || !in_bounds)
				rc = reply(c, handle, NBD_EINVAL, NULL, 0);
			else {
				int tr = nbd_export_trim(x, off, len);
				rc = reply(c, handle, tr ? nbd_errno(tr) : 0, NULL, 0);
			}
			break;
		case NBD_CMD_WRITE_ZEROES: {
			if (flags & ~KNOWN_FLAGS) {
				rc = reply(c, handle, NBD_EINVAL, NULL, 0);
				break;
			}
			if (!in_bounds) {
				rc = reply(c, handle, NBD_ENOSPC, NULL, 0);
				break;
			}
			int zr = nbd_export_zero(x, off, len, (flags & NBD_CMD_FLAG_NO_HOLE) != 0);
			rc = reply(c, handle, zr ? nbd_errno(zr) : 0, NULL, 0);
			break;
		}
		default:
			/* Unknown command: EINVAL, and the connection carries on. */
			rc = reply(c, handle, NBD_EINVAL, NULL, 0);
			break;
		}
		if (rc)
			return;
	}
}
