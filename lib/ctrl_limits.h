/* SPDX-License-Identifier: MIT */
/*
 * Sizes and ranges of control-message fields (proto/spillway.proto), apart
 * from the protobuf types: code that keeps these values in plain C structs
 * (the server's registry and NBD exports) includes this and never sees a
 * generated message. ctrl.h enforces them on every message it unpacks.
 */
#ifndef SPILLWAY_CTRL_LIMITS_H
#define SPILLWAY_CTRL_LIMITS_H

#define CTRL_NONCE_BYTES  32
#define CTRL_MAC_BYTES    32
#define CTRL_TOKEN_BYTES  16
#define CTRL_NAME_MAX     64
#define CTRL_PRIORITY_MIN (-1000)
#define CTRL_PRIORITY_MAX 1000
#define CTRL_ALLOC_MAX    64 /* extents per AllocExtent */
#define CTRL_CLUSTER_MAX  256 /* servers in one cluster */

/* NBD export names: as client names, at most 60 bytes ("nbd:" + name fits). */
#define CTRL_EXPORT_NAME_MAX  60
#define CTRL_EXPORT_MAX_BYTES (1ull << 40)

#endif
