/* SPDX-License-Identifier: MIT */
/*
 * NBD wire constants (NetworkBlockDevice doc/proto.md), the fixed newstyle
 * handshake and simple replies only. All fields are big-endian.
 */
#ifndef SPILLWAY_NBD_PROTO_H
#define SPILLWAY_NBD_PROTO_H

#include <stdint.h>

#define NBD_MAGIC            0x4e42444d41474943ull /* "NBDMAGIC" */
#define NBD_IHAVEOPT         0x49484156454f5054ull /* "IHAVEOPT" */
#define NBD_REP_MAGIC        0x3e889045565a9ull
#define NBD_REQUEST_MAGIC    0x25609513u
#define NBD_SIMPLE_REPLY_MAGIC 0x67446698u

/* Handshake flags (server) and client flags. */
#define NBD_FLAG_FIXED_NEWSTYLE 1u
#define NBD_FLAG_NO_ZEROES      2u

/* Options. */
#define NBD_OPT_EXPORT_NAME 1
#define NBD_OPT_ABORT       2
#define NBD_OPT_LIST        3
#define NBD_OPT_INFO        6
#define NBD_OPT_GO          7

/* Option replies. */
#define NBD_REP_ACK         1u
#define NBD_REP_SERVER      2u
#define NBD_REP_INFO        3u
#define NBD_REP_ERR_UNSUP   (0x80000000u + 1)
#define NBD_REP_ERR_INVALID (0x80000000u + 3)
#define NBD_REP_ERR_UNKNOWN (0x80000000u + 6)
#define NBD_REP_ERR_TOO_BIG (0x80000000u + 9)

#define NBD_INFO_EXPORT     0
#define NBD_INFO_NAME       1
#define NBD_INFO_BLOCK_SIZE 3

/* Transmission flags. */
#define NBD_FLAG_HAS_FLAGS         (1u << 0)
#define NBD_FLAG_SEND_FLUSH        (1u << 2)
#define NBD_FLAG_SEND_FUA          (1u << 3)
#define NBD_FLAG_SEND_TRIM         (1u << 5)
#define NBD_FLAG_SEND_WRITE_ZEROES (1u << 6)
#define NBD_FLAG_CAN_MULTI_CONN    (1u << 8)
#define NBD_FLAG_SEND_FAST_ZERO    (1u << 11)

/* Commands and their flags. */
#define NBD_CMD_READ         0
#define NBD_CMD_WRITE        1
#define NBD_CMD_DISC         2
#define NBD_CMD_FLUSH        3
#define NBD_CMD_TRIM         4
#define NBD_CMD_WRITE_ZEROES 6

#define NBD_CMD_FLAG_FUA       (1u << 0)
#define NBD_CMD_FLAG_NO_HOLE   (1u << 1)
#define NBD_CMD_FLAG_DF        (1u << 2)
#define NBD_CMD_FLAG_FAST_ZERO (1u << 4)

/* Error values on the wire (the spec fixes them; they equal Linux errno). */
#define NBD_EIO    5
#define NBD_ENOMEM 12
#define NBD_EINVAL 22
#define NBD_ENOSPC 28

/* What spillwayd announces: any alignment works, 4 KiB is best, and one
 * request moves at most 32 MiB (the spec's recommended cap). */
#define NBD_BLOCK_MIN  1u
#define NBD_BLOCK_PREF 4096u
#define NBD_BLOCK_MAX  (32u << 20)

/* Largest option payload read; bigger ones are drained and refused. */
#define NBD_OPT_MAX_LEN 65536u

#endif
