/* SPDX-License-Identifier: MIT */
/*
 * Spillway data-plane frame layout.
 *
 * This header is the single source of truth for the bytes on the wire. It is
 * included by userspace (lib/frame.c) and by the kernel module, so it uses only
 * <linux/types.h> fixed-width little-endian types: no libc types, no functions.
 *
 * Every message, data or control, is one frame: a 48-byte header followed by
 * payload_len bytes. Control messages (protobuf-c, proto/spillway.proto) travel
 * as op SPILL_OP_CTRL with the packed message as payload.
 *
 * crc is a CRC32C (Castagnoli) over the header with the crc field zeroed, then
 * over the payload. A frame whose crc does not match is never acted upon or
 * acknowledged. A WRITE's payload never touches the extent before the whole
 * frame is in and its CRC checked.
 *
 * Ordering (version 2): WRITE and INVALIDATE carry wver, a write version the
 * client raises for every write it sends (one counter per client, across
 * all its connections). The server keeps the version each page was last
 * written or invalidated with and applies a write to a page only if its
 * wver is not older; so a write that reaches the server late (a timed-out
 * connection, a stalled peer) can never undo a newer one that came on
 * another connection. See docs/protocol.md.
 */
#ifndef SPILLWAY_WIRE_H
#define SPILLWAY_WIRE_H

#include <linux/types.h>

#define SPILL_WIRE_MAGIC        0x4c495053u /* "SPIL" read as little-endian */
#define SPILL_WIRE_VERSION      2
#define SPILL_PAGE_SHIFT        12
#define SPILL_PAGE_SIZE         (1u << SPILL_PAGE_SHIFT)
#define SPILL_MAX_BATCH_PAGES   512u        /* one 2 MiB huge page */
#define SPILL_PRESENT_MAP_BYTES (SPILL_MAX_BATCH_PAGES / 8u)
/* Control frames: room for a RegisterReply listing ~100k extents. */
#define SPILL_MAX_CTRL_PAYLOAD  (1024u * 1024u)
#define SPILL_NODE_ANY          0xffffffffu
/* Write versions are below 2^63: a clock can never be pushed to where its
 * next version wraps (a frame with a larger wver is malformed). */
#define SPILL_WVER_LIMIT        (1ull << 63)
/* Largest payload any frame may carry: a full batch plus its presence map. */
#define SPILL_MAX_PAYLOAD \
	(SPILL_MAX_BATCH_PAGES * SPILL_PAGE_SIZE + SPILL_PRESENT_MAP_BYTES)

/* Operations. Replies carry the request's op with SPILL_OP_REPLY set. */
enum spill_wire_op {
	SPILL_OP_PING       = 1, /* no payload; reply echoes req_id            */
	SPILL_OP_READ       = 2, /* pages [page, page+npages) of extent        */
	SPILL_OP_WRITE      = 3, /* payload: npages * SPILL_PAGE_SIZE bytes    */
	SPILL_OP_INVALIDATE = 4, /* forget pages; later READs report absent    */
	SPILL_OP_CTRL       = 5, /* payload: packed SpillCtrl protobuf message */
	/*
	 * Extent management without protobuf, for clients that cannot carry a
	 * protobuf codec (the kernel module). ALLOC: page = preferred NUMA node
	 * or SPILL_NODE_ANY, no payload; the reply's extent_id is the new extent
	 * (its size is HelloReply.extent_bytes). FREE: extent_id, no payload.
	 */
	SPILL_OP_ALLOC      = 6,
	SPILL_OP_FREE       = 7,
	/*
	 * RDMA only. KEY: extent_id, no payload. The reply (status OK) carries
	 * a struct spill_wire_key: where the extent sits in the server's memory
	 * and the remote key that reaches it, valid on every connection of the
	 * owning identity that shares its protection domain. Then READ and WRITE
	 * of that extent can go as one-sided RDMA operations.
	 */
	SPILL_OP_KEY        = 8,
	SPILL_OP_REPLY      = 0x8000,
};

/* Header flags. */
enum spill_wire_flag {
	/*
	 * On a READ reply: the payload starts with SPILL_PRESENT_MAP_BYTES of
	 * bitmap (bit i set = page i present), then the pages, with absent pages
	 * sent as zeros. Without this flag every page in the range was present.
	 */
	SPILL_WF_PRESENT_MAP = 1u << 0,
};

/*
 * Status codes carried in replies. Stable on the wire; userspace maps them to
 * errno values in one place (frame_status_to_errno).
 */
enum spill_wire_status {
	SPILL_ST_OK          = 0,
	SPILL_ST_EPROTO      = 1,  /* malformed frame or message               */
	SPILL_ST_EAUTH       = 2,  /* not authenticated, or bad credentials    */
	SPILL_ST_ENOREG      = 3,  /* data op before REGISTER                  */
	SPILL_ST_ENOEXTENT   = 4,  /* no such extent                           */
	SPILL_ST_EACCES      = 5,  /* not permitted (a name reserved for exports) */
	SPILL_ST_ERANGE      = 6,  /* pages outside the extent                 */
	SPILL_ST_ENOSPC      = 7,  /* pool (or unreserved part of it) is full  */
	SPILL_ST_EDQUOT      = 8,  /* client over its limit                    */
	SPILL_ST_ABSENT      = 9,  /* some pages were never written or invalidated */
	SPILL_ST_EBUSY       = 10, /* identity exists: resuming needs its token */
	SPILL_ST_EINVAL      = 11, /* well-formed but invalid argument         */
	SPILL_ST_ENOTSUP     = 12, /* unknown op or request                    */
	SPILL_ST_EINTERNAL   = 13, /* server fault; logged server-side         */
	/* WRITE/INVALIDATE: some pages hold a newer version and kept it; the
	 * others were applied. Only a superseded write can get it. */
	SPILL_ST_ESTALE      = 14,
	SPILL_ST_MAX,
};

struct spill_wire_hdr {
	__le32 magic;       /* SPILL_WIRE_MAGIC                            */
	__u8   version;     /* SPILL_WIRE_VERSION                          */
	__u8   flags;       /* enum spill_wire_flag                        */
	__le16 op;          /* enum spill_wire_op                          */
	__le64 req_id;      /* chosen by the requester, echoed in reply    */
	__le64 extent_id;   /* data ops: target extent                     */
	__le32 page;        /* data ops: first page within the extent      */
	__le16 npages;      /* data ops: 1..SPILL_MAX_BATCH_PAGES          */
	__le16 status;      /* replies: enum spill_wire_status             */
	__le64 wver;        /* WRITE/INVALIDATE: write version; replies echo it */
	__le32 payload_len; /* bytes following the header                  */
	__le32 crc;         /* CRC32C of header (crc = 0) and payload      */
};

#define SPILL_WIRE_HDR_SIZE 48

/* Payload of a successful KEY reply. */
struct spill_wire_key {
	__le64 addr;        /* remote address of the extent's first page     */
	__le32 rkey;        /* RDMA remote key                               */
	__le32 npages;      /* the extent's length in pages                  */
};

#define SPILL_WIRE_KEY_SIZE 16

/* C11 in userspace, BUILD_BUG_ON in the kernel: pin the layout on both sides. */
#ifdef __KERNEL__
#define SPILL_WIRE_ASSERT_LAYOUT() \
	BUILD_BUG_ON(sizeof(struct spill_wire_hdr) != SPILL_WIRE_HDR_SIZE)
#else
_Static_assert(sizeof(struct spill_wire_hdr) == SPILL_WIRE_HDR_SIZE,
	       "spill_wire_hdr must be 48 bytes");
_Static_assert(__builtin_offsetof(struct spill_wire_hdr, crc) == 44,
	       "crc must be the last header field");
_Static_assert(sizeof(struct spill_wire_key) == SPILL_WIRE_KEY_SIZE,
	       "spill_wire_key must be 16 bytes");
#endif

#endif /* SPILLWAY_WIRE_H */
