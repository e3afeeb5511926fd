/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * The interface between spillway.ko and userspace (spillctl): ioctls on the
 * control device /dev/spillway-ctl. Included by the module and by spillctl,
 * so it uses only <linux/types.h> and <linux/ioctl.h>.
 *
 * spillctl does the handshake, authentication and registration with each
 * server in userspace, then hands the connected TCP sockets to the module:
 *
 *   SPILL_IOC_ADD     create /dev/spillwayN (size, servers, replicas, extent size)
 *   SPILL_IOC_SOCK    give device N a connected, registered socket to server S
 *   SPILL_IOC_STATUS  counters of device N (-ENODEV when there is none)
 *   SPILL_IOC_REMOVE  delete device N (-EBUSY while it is open, e.g. swapped on)
 *
 * Events: read() of the control device returns a __u64 that changes whenever a
 * connection dies, a socket is added or a device goes away; poll() reports
 * POLLIN while the value differs from the one this file last read. A resident
 * spillctl waits on it to replace dead connections.
 */
#ifndef SPILLWAY_IOCTL_H
#define SPILLWAY_IOCTL_H

#include <linux/ioctl.h>
#include <linux/types.h>

#define SPILL_CTL_NAME      "spillway-ctl"
#define SPILL_DISK_PREFIX   "spillway"
#define SPILL_MAX_DEVICES   16
#define SPILL_MAX_SERVERS   8
#define SPILL_MAX_REPLICAS  4
#define SPILL_MAX_CONNS     8     /* per server */
#define SPILL_NAME_BYTES    80    /* a name of up to 64 characters, NUL, padding */
#define SPILL_LABEL_BYTES   128
/* 64 Mi pages: the page-location table costs one byte per page. */
#define SPILL_MAX_SIZE      (256ull << 30)

struct spill_ioc_add {
	__u64 size;           /* in: bytes, a multiple of 4096 */
	__u64 extent_bytes;   /* in: the servers' HelloReply.extent_bytes */
	__u32 nservers;       /* in: 1..SPILL_MAX_SERVERS */
	__u32 replicas;       /* in: 1..min(nservers, SPILL_MAX_REPLICAS) */
	__u32 flags;          /* in: 0 */
	__u32 index;          /* out: N of /dev/spillwayN */
	__u64 id;             /* out: identifies this attachment (never reused) */
	char name[SPILL_NAME_BYTES];                        /* in: shown by status */
	char labels[SPILL_MAX_SERVERS][SPILL_LABEL_BYTES];  /* in: server URLs */
};

/* SPILL_IOC_SOCK flags. */
#define SPILL_SOCK_RESET     (1u << 0) /* the server lost our identity (restart,
					* grace expired): forget every extent
					* and page copy there; needs no live
					* connection to that server */
#define SPILL_SOCK_RECONNECT (1u << 1) /* replaces a dead connection (counted) */

struct spill_ioc_sock {
	__u64 id;             /* in: the attachment's id (guards a reused index) */
	__u32 index;          /* in: device */
	__u32 server;         /* in: 0..nservers-1 */
	__s32 fd;             /* in: connected TCP socket, registered */
	__u32 window;         /* in: requests in flight (HelloReply.max_inflight) */
	__u32 flags;          /* in: SPILL_SOCK_* */
	__u32 pad;
};

struct spill_ioc_remove {
	__u64 id;             /* in: 0, or the attachment's id */
	__u32 index;          /* in */
	__u32 flags;          /* in: 0 */
};

struct spill_srv_status {
	char label[SPILL_LABEL_BYTES];
	__u32 conns;          /* live connections */
	__u32 epoch;          /* bumped by every SPILL_SOCK_RESET, from 1 */
	__u64 sockets_added;
	__u64 reconnects;     /* sockets added with SPILL_SOCK_RECONNECT */
	__u64 conn_failures;  /* connections that died */
	__u64 resets;
	__u64 io_errors;      /* requests this server failed or never answered */
	__u64 extents;        /* extents held there now */
};

/* spill_ioc_status.flags */
#define SPILL_STATUS_DYING  (1u << 0)

struct spill_ioc_status {
	__u32 index;          /* in */
	__u32 flags;          /* out */
	__u64 id;
	char name[SPILL_NAME_BYTES];
	__u64 size;
	__u64 extent_bytes;
	__u32 nservers;
	__u32 replicas;
	__u32 opens;
	__u32 pad;
	__u64 pages_remote;   /* pages holding data now */
	__u64 reads;          /* pages read from a server */
	__u64 writes;         /* pages written (once per page, all replicas) */
	__u64 zero_reads;     /* pages read that were never written */
	__u64 read_errors;    /* pages no replica could return */
	__u64 write_errors;   /* pages no replica could store */
	__u64 failovers;      /* reads served by another replica after a failure */
	__u64 degraded_writes;/* page writes that missed a replica */
	__u64 pages_freed;    /* swap slots freed and discarded pages */
	__u64 invalidates;    /* INVALIDATE requests sent */
	__u64 extents_allocated;
	__u64 extents_freed;
	__u64 ra_pages;       /* pages prefetched */
	__u64 ra_hits;        /* swap-ins served from prefetched pages */
	struct spill_srv_status srv[SPILL_MAX_SERVERS];
};

#define SPILL_IOC_MAGIC   0xb7
#define SPILL_IOC_ADD     _IOWR(SPILL_IOC_MAGIC, 1, struct spill_ioc_add)
#define SPILL_IOC_SOCK    _IOW(SPILL_IOC_MAGIC, 2, struct spill_ioc_sock)
#define SPILL_IOC_REMOVE  _IOW(SPILL_IOC_MAGIC, 3, struct spill_ioc_remove)
#define SPILL_IOC_STATUS  _IOWR(SPILL_IOC_MAGIC, 4, struct spill_ioc_status)

#endif
