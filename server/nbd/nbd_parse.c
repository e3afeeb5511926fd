/* SPDX-License-Identifier: MIT */
#include "nbd_parse.h"

#include <errno.h>
#include <string.h>

#include "nbd_io.h"
#include "nbd_proto.h"

#define KNOWN_CMD_FLAGS (NBD_CMD_FLAG_FUA | NBD_CMD_FLAG_NO_HOLE | NBD_CMD_FLAG_DF | \
			 NBD_CMD_FLAG_FAST_ZERO)

int nbd_parse_client_flags(uint32_t cf)
{
	if (!(cf & NBD_FLAG_FIXED_NEWSTYLE) ||
	    (cf & ~(NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES)))
		return -EPROTO;
	return 0;
}

int nbd_parse_opt_hdr(const uint8_t b[NBD_OPT_HDR_LEN], uint32_t *opt, uint32_t *len)
{
	if (nbd_get64(b) != NBD_IHAVEOPT)
		return -EPROTO;
	*opt = nbd_get32(b + 8);
	*len = nbd_get32(b + 12);
	return 0;
}

/* A name of len bytes into name: -EINVAL if too long, -ENOENT with a NUL
 * inside (no export has that name). */
static int copy_name(const uint8_t *p, uint32_t len, char name[NBD_NAME_MAX + 1])
{
	if (len > NBD_NAME_MAX)
		return -EINVAL;
	if (memchr(p, 0, len))
		return -ENOENT;
	memcpy(name, p, len);
	name[len] = 0;
	return 0;
}

int nbd_parse_info_req(const uint8_t *p, uint32_t len, struct nbd_info_req *r)
{
	if (len < 6)
		return -EINVAL;
	uint32_t nlen = nbd_get32(p);
	if (nlen > len - 6)
		return -EINVAL;
	uint16_t nreq = nbd_get16(p + 4 + nlen);
	if (len != 6 + nlen + 2u * nreq)
		return -EINVAL;
	r->name_len = nlen;
	r->want_name = 0;
	for (uint16_t i = 0; i < nreq; i++)
		r->want_name |= nbd_get16(p + 6 + nlen + 2u * i) == NBD_INFO_NAME;
	return copy_name(p + 4, nlen, r->name);
}

int nbd_parse_export_name(const uint8_t *p, uint32_t len, char name[NBD_NAME_MAX + 1])
{
	return copy_name(p, len, name);
}

int nbd_parse_request(const uint8_t b[NBD_REQUEST_LEN], struct nbd_request *r)
{
	if (nbd_get32(b) != NBD_REQUEST_MAGIC)
		return -EPROTO;
	r->flags = nbd_get16(b + 4);
	r->type = nbd_get16(b + 6);
	r->handle = nbd_get64(b + 8);
	r->off = nbd_get64(b + 16);
	r->len = nbd_get32(b + 24);
	return 0;
}

uint32_t nbd_request_check(const struct nbd_request *r, uint64_t size, uint32_t max)
{
	int in_bounds = r->off <= size && r->len <= size - r->off;
	if (r->flags & ~KNOWN_CMD_FLAGS)
		return NBD_EINVAL;
	switch (r->type) {
	case NBD_CMD_READ:
		return r->len > max || !in_bounds ? NBD_EINVAL : 0;
	case NBD_CMD_WRITE:
		if (r->len > max)
			return NBD_EINVAL;
		return in_bounds ? 0 : NBD_ENOSPC; /* the spec's answer past the end */
	case NBD_CMD_DISC:
	case NBD_CMD_FLUSH:
		return 0;
	case NBD_CMD_TRIM:
		return in_bounds ? 0 : NBD_EINVAL;
	case NBD_CMD_WRITE_ZEROES:
		return in_bounds ? 0 : NBD_ENOSPC;
	default:
		return NBD_EINVAL; /* unknown command: the connection carries on */
	}
}
