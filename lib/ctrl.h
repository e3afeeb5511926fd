/* SPDX-License-Identifier: MIT */
/*
 * Control-plane codec: Spillway__Ctrl (proto/spillway.proto) to and from the
 * payload of a SPILL_OP_CTRL frame, with the semantic rules protobuf cannot
 * express (a message must be set, names are short and printable, nonces and
 * MACs have their exact sizes, priorities are in range).
 */
#ifndef SPILLWAY_CTRL_H
#define SPILLWAY_CTRL_H

#include <stddef.h>
#include <stdint.h>

#include "ctrl_limits.h"
#include "spillway.pb-c.h"

/* Pack into buf (cap bytes). Returns the length, or -EMSGSIZE. */
int ctrl_pack(const Spillway__Ctrl *msg, void *buf, size_t cap);
size_t ctrl_packed_size(const Spillway__Ctrl *msg);

/*
 * Unpack and validate. Returns the message (free with ctrl_free) or NULL with
 * *err = -EPROTO and *why naming the rule broken. Unpacking allocates at most
 * CTRL_UNPACK_FACTOR times len plus CTRL_UNPACK_SLACK; a message that would
 * need more is refused like an undecodable one.
 */
#define CTRL_UNPACK_FACTOR 16
#define CTRL_UNPACK_SLACK  (64 * 1024)
Spillway__Ctrl *ctrl_unpack(const void *buf, size_t len, int *err, const char **why);
void ctrl_free(Spillway__Ctrl *msg);

/* The semantic checks alone (ctrl_unpack calls it). 0 or -EPROTO. */
int ctrl_validate(const Spillway__Ctrl *msg, const char **why);

/* A client name is 1..64 of [A-Za-z0-9._:-]. */
int ctrl_name_valid(const char *name);
/* NBD export names: as client names, at most CTRL_EXPORT_NAME_MAX bytes. */
int ctrl_export_name_valid(const char *name);

const char *ctrl_msg_name(const Spillway__Ctrl *msg);

#endif
