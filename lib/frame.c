/* SPDX-License-Identifier: MIT */
#include "frame.h"

#include <endian.h>
#include <errno.h>
#include <string.h>

#include "crc32c.h"

void frame_hdr_pack(const struct frame_hdr *h, struct spill_wire_hdr *w)
{
	w->magic = htole32(SPILL_WIRE_MAGIC);
	w->version = h->version ? h->version : SPILL_WIRE_VERSION;
	w->flags = h->flags;
	w->op = htole16(h->op);
	w->req_id = htole64(h->req_id);
	w->extent_id = htole64(h->extent_id);
	w->page = htole32(h->page);
	w->npages = htole16(h->npages);
	w->status = htole16(h->status);
	w->wver = htole64(h->wver);
	w->payload_len = htole32(h->payload_len);
	w->crc = htole32(h->crc);
}

static int reject(const char **why, const char *rule)
{
	if (why)
		*why = rule;
	return -EPROTO;
}

static int check_batch(const struct frame_hdr *h, const char **why)
{
	if (h->npages == 0 || h->npages > SPILL_MAX_BATCH_PAGES)
		return reject(why, "page count outside 1..512");
	return 0;
}

/* Requests: the payload is fully determined by op and npages. */
static int check_request(const struct frame_hdr *h, const char **why)
{
	if (h->status != SPILL_ST_OK)
		return reject(why, "status set on a request");
	if (h->wver && h->op != SPILL_OP_WRITE && h->op != SPILL_OP_INVALIDATE)
		return reject(why, "write version on a request that writes nothing");
	if (h->wver >= SPILL_WVER_LIMIT)
		return reject(why, "write version at or above 2^63");
	switch (h->op) {
	case SPILL_OP_PING:
	case SPILL_OP_ALLOC:
	case SPILL_OP_FREE:
	case SPILL_OP_KEY:
		return h->payload_len ? reject(why, "payload on PING/ALLOC/FREE/KEY") : 0;
	case SPILL_OP_READ:
	case SPILL_OP_INVALIDATE:
		if (h->payload_len)
			return reject(why, "payload on READ/INVALIDATE");
		return check_batch(h, why);
	case SPILL_OP_WRITE:
		if (check_batch(h, why))
			return -EPROTO;
		if (h->payload_len != (uint32_t)h->npages * SPILL_PAGE_SIZE)
			return reject(why, "WRITE payload is not npages pages");
		return 0;
	case SPILL_OP_CTRL:
		if (h->payload_len == 0 || h->payload_len > SPILL_MAX_CTRL_PAYLOAD)
			return reject(why, "control payload size out of bounds");
		return 0;
	}
	return reject(why, "unknown op");
}

static int check_reply(const struct frame_hdr *h, const char **why)
{
	uint16_t op = h->op & ~SPILL_OP_REPLY;
	if (h->status >= SPILL_ST_MAX)
		return reject(why, "unknown status");
	if (op == SPILL_OP_CTRL) {
		if (h->payload_len > SPILL_MAX_CTRL_PAYLOAD)
			return reject(why, "control payload size out of bounds");
		return 0;
	}
	if (op != SPILL_OP_PING && op != SPILL_OP_READ && op != SPILL_OP_WRITE &&
	    op != SPILL_OP_INVALIDATE && op != SPILL_OP_ALLOC && op != SPILL_OP_FREE &&
	    op != SPILL_OP_KEY)
		return reject(why, "unknown op");
	if (op == SPILL_OP_KEY) {
		uint32_t want = h->status == SPILL_ST_OK ? SPILL_WIRE_KEY_SIZE : 0;
		return h->payload_len != want ? reject(why, "KEY reply payload size") : 0;
	}
	if (op == SPILL_OP_READ && h->payload_len) {
		uint32_t want = (uint32_t)h->npages * SPILL_PAGE_SIZE;
		if (check_batch(h, why))
			return -EPROTO;
		if (h->flags & SPILL_WF_PRESENT_MAP)
			want += SPILL_PRESENT_MAP_BYTES;
		if (h->payload_len != want)
			return reject(why, "READ reply payload does not match its range");
		return 0;
	}
	return h->payload_len ? reject(why, "payload on a data reply") : 0;
}

int frame_hdr_unpack(const struct spill_wire_hdr *w, struct frame_hdr *h,
		     const char **why)
{
	if (le32toh(w->magic) != SPILL_WIRE_MAGIC)
		return reject(why, "bad magic");
	h->version = w->version;
	h->flags = w->flags;
	h->op = le16toh(w->op);
	h->req_id = le64toh(w->req_id);
	h->extent_id = le64toh(w->extent_id);
	h->page = le32toh(w->page);
	h->npages = le16toh(w->npages);
	h->status = le16toh(w->status);
	h->wver = le64toh(w->wver);
	h->payload_len = le32toh(w->payload_len);
	h->crc = le32toh(w->crc);
	if (h->version != SPILL_WIRE_VERSION)
		return reject(why, "unsupported version");
	if (h->flags & ~SPILL_WF_PRESENT_MAP)
		return reject(why, "unknown flags");
	if (h->payload_len > SPILL_MAX_PAYLOAD)
		return reject(why, "payload too large");
	if (h->op & SPILL_OP_REPLY)
		return check_reply(h, why);
	if (h->flags)
		return reject(why, "flags set on a request");
	return check_request(h, why);
}

uint32_t frame_crc(const struct spill_wire_hdr *w, const struct iovec *iov, int iovcnt)
{
	struct spill_wire_hdr tmp = *w;
	tmp.crc = 0;
	uint32_t crc = crc32c(0, &tmp, sizeof(tmp));
	for (int i = 0; i < iovcnt; i++)
		crc = crc32c(crc, iov[i].iov_base, iov[i].iov_len);
	return crc;
}

uint32_t frame_crc_from_pages(const struct spill_wire_hdr *w, const void *prefix,
			      size_t prefix_len, const uint32_t *page_raw, size_t npages)
{
	struct spill_wire_hdr tmp = *w;
	tmp.crc = 0;
	uint32_t s = crc32c_raw(~0u, &tmp, sizeof(tmp));
	if (prefix_len)
		s = crc32c_raw(s, prefix, prefix_len);
	for (size_t i = 0; i < npages; i++)
		s = crc32c_shift_page(s) ^ page_raw[i];
	return ~s;
}

void frame_seal(struct spill_wire_hdr *w, const struct iovec *iov, int iovcnt)
{
	w->crc = htole32(frame_crc(w, iov, iovcnt));
}

int frame_verify(const struct spill_wire_hdr *w, const struct iovec *iov, int iovcnt)
{
	return le32toh(w->crc) == frame_crc(w, iov, iovcnt) ? 0 : -EBADMSG;
}

void frame_reply_hdr(const struct frame_hdr *req, uint16_t status,
		     uint32_t payload_len, struct frame_hdr *reply)
{
	memset(reply, 0, sizeof(*reply));
	reply->version = SPILL_WIRE_VERSION;
	reply->op = req->op | SPILL_OP_REPLY;
	reply->req_id = req->req_id;
	reply->extent_id = req->extent_id;
	reply->page = req->page;
	reply->npages = req->npages;
	reply->status = status;
	reply->wver = req->wver;
	reply->payload_len = payload_len;
}

static const struct {
	uint16_t status;
	int err;
	const char *name;
} status_map[] = {
	{ SPILL_ST_OK, 0, "ok" },
	{ SPILL_ST_EPROTO, EPROTO, "protocol error" },
	{ SPILL_ST_EAUTH, EACCES, "authentication failed" },
	{ SPILL_ST_ENOREG, ENOTCONN, "not registered" },
	{ SPILL_ST_ENOEXTENT, ENOENT, "no such extent" },
	{ SPILL_ST_EACCES, EPERM, "not permitted" },
	{ SPILL_ST_ERANGE, ERANGE, "pages outside the extent" },
	{ SPILL_ST_ENOSPC, ENOSPC, "pool full" },
	{ SPILL_ST_EDQUOT, EDQUOT, "client over its limit" },
	{ SPILL_ST_ABSENT, ENODATA, "page absent (never written or invalidated)" },
	{ SPILL_ST_EBUSY, EBUSY, "busy" },
	{ SPILL_ST_EINVAL, EINVAL, "invalid argument" },
	{ SPILL_ST_ENOTSUP, EOPNOTSUPP, "not supported" },
	{ SPILL_ST_EINTERNAL, EIO, "server internal error" },
	{ SPILL_ST_ESTALE, ESTALE, "superseded by a newer write" },
};

#define NMAP (sizeof(status_map) / sizeof(status_map[0]))

int frame_status_to_errno(uint16_t status)
{
	for (size_t i = 0; i < NMAP; i++)
		if (status_map[i].status == status)
			return status_map[i].err;
	return EIO;
}

uint16_t frame_errno_to_status(int err)
{
	if (err < 0)
		err = -err;
	for (size_t i = 0; i < NMAP; i++)
		if (status_map[i].err == err)
			return status_map[i].status;
	return SPILL_ST_EINTERNAL;
}

const char *frame_status_name(uint16_t status)
{
	for (size_t i = 0; i < NMAP; i++)
		if (status_map[i].status == status)
			return status_map[i].name;
	return "unknown status";
}

const char *frame_op_name(uint16_t op)
{
	switch (op & ~SPILL_OP_REPLY) {
	case SPILL_OP_PING: return "ping";
	case SPILL_OP_READ: return "read";
	case SPILL_OP_WRITE: return "write";
	case SPILL_OP_INVALIDATE: return "invalidate";
	case SPILL_OP_CTRL: return "ctrl";
	case SPILL_OP_ALLOC: return "alloc";
	case SPILL_OP_FREE: return "free";
	case SPILL_OP_KEY: return "key";
	}
	return "unknown";
}
