// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * Frames of proto/wire.h on the kernel side: request headers and the CRC32C.
 *
 * The wire CRC is the usual CRC-32C (initial value and final xor 0xffffffff)
 * over the header with its crc field zero, continued over the payload. The
 * kernel's crc32c() is the raw register update without either inversion, so
 * a frame's CRC is ~crc32c(crc32c(~0, header), payload...).
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/bvec.h>
#include <linux/crc32c.h>
#include <linux/errno.h>
#include <linux/highmem.h>
#include <linux/string.h>

#include "spill.h"

void spill_wire_request(struct spill_wire_hdr *h, const struct spill_cmd *cmd,
			u32 payload_len)
{
	bool ranged = cmd->op == SPILL_OP_READ || cmd->op == SPILL_OP_WRITE ||
		      cmd->op == SPILL_OP_INVALIDATE;

	memset(h, 0, sizeof(*h));
	h->magic = cpu_to_le32(SPILL_WIRE_MAGIC);
	h->version = SPILL_WIRE_VERSION;
	h->op = cpu_to_le16(cmd->op);
	h->req_id = cpu_to_le64(cmd->req_id);
	h->extent_id = cpu_to_le64(cmd->extent);
	h->page = cpu_to_le32(cmd->page);
	h->npages = cpu_to_le16(ranged ? cmd->npages : 0);
	/* Taken as the frame is built, so every send (a resend too) of a write
	 * is newer than all the device's writes built before it; unless the
	 * caller reserved one earlier, to be older than every write that
	 * begins after the moment it decided what to send. */
	if (cmd->op == SPILL_OP_WRITE || cmd->op == SPILL_OP_INVALIDATE)
		h->wver = cpu_to_le64(cmd->wver ? cmd->wver : spill_wver_reserve(cmd->dev));
	h->payload_len = cpu_to_le32(payload_len);
}

/* The next version of the device's write clock. */
u64 spill_wver_reserve(struct spill_dev *dev)
{
	return atomic64_inc_return(&dev->wver_clock);
}

/* Raw CRC register after the header (crc field taken as zero). */
u32 spill_crc_begin(const struct spill_wire_hdr *h)
{
	struct spill_wire_hdr tmp = *h;

	tmp.crc = 0;
	return crc32c(~0u, &tmp, sizeof(tmp));
}

/* Continue a raw CRC over the bytes a bvec iterator covers. */
u32 spill_crc_bvec(u32 state, const struct bio_vec *bvec, struct bvec_iter iter)
{
	struct bvec_iter it;
	struct bio_vec bv;

	for_each_bvec(bv, bvec, it, iter) {
		void *p = kmap_local_page(bv.bv_page);

		state = crc32c(state, p + bv.bv_offset, bv.bv_len);
		kunmap_local(p);
	}
	return state;
}

/* The mapping of lib/frame.c, for replies (errno positive there, negative here). */
int spill_wire_status_errno(u16 status)
{
	switch (status) {
	case SPILL_ST_OK:        return 0;
	case SPILL_ST_EPROTO:    return -EPROTO;
	case SPILL_ST_EAUTH:     return -EACCES;
	case SPILL_ST_ENOREG:    return -ENOTCONN;
	case SPILL_ST_ENOEXTENT: return -ENOENT;
	case SPILL_ST_EACCES:    return -EPERM;
	case SPILL_ST_ERANGE:    return -ERANGE;
	case SPILL_ST_ENOSPC:    return -ENOSPC;
	case SPILL_ST_EDQUOT:    return -EDQUOT;
	case SPILL_ST_ABSENT:    return -ENODATA;
	case SPILL_ST_EBUSY:     return -EBUSY;
	case SPILL_ST_EINVAL:    return -EINVAL;
	case SPILL_ST_ENOTSUP:   return -EOPNOTSUPP;
	case SPILL_ST_ESTALE:    return -ESTALE;
	default:                 return -EIO;
	}
}

/* The check value of CRC-32C, so a wrong convention fails at load time. */
int spill_wire_selftest(void)
{
	static const char check[] = "123456789";

	SPILL_WIRE_ASSERT_LAYOUT();
	BUILD_BUG_ON(offsetof(struct spill_wire_hdr, crc) != 44);
	if (spill_crc_end(crc32c(~0u, check, 9)) != 0xe3069283u)
		return -EINVAL;
	return 0;
}
