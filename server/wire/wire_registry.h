/* SPDX-License-Identifier: MIT */
/*
 * The registry's side of the control protocol: Register requests and
 * ClientStats reports between their protobuf messages and the registry's
 * plain structs (registry.h). Nothing else in the registry sees a message.
 *
 * Messages built here borrow: their strings and byte fields point into the
 * plain structs they came from, which must outlive them. Conversions from a
 * message copy, and refuse (-EPROTO) what a plain struct cannot hold exactly
 * (a name longer than CTRL_NAME_MAX, a token that is not CTRL_TOKEN_BYTES)
 * rather than cut it; ctrl_unpack has refused such messages already, so this
 * is a second line, never the first. Names are not checked for content
 * here: that is ctrl_validate's rule, and the bytes go through unchanged.
 */
#ifndef SPILLWAY_WIRE_REGISTRY_H
#define SPILLWAY_WIRE_REGISTRY_H

#include <stddef.h>

#include "registry.h"
#include "spillway.pb-c.h"

/* Register -> *out. 0, or -EPROTO. */
int wire_registry_request(const Spillway__Register *m, struct reg_request *out);

/* One report -> *out (borrowing s->name). */
void wire_registry_stats(const struct reg_client_stats *s, Spillway__ClientStats *out);
/* n reports -> the repeated field of a reply: one allocation holding the
 * pointer array and the messages (wire_list.h), free() it. NULL only when
 * out of memory. */
Spillway__ClientStats **wire_registry_stats_list(const struct reg_client_stats *v, size_t n);
/* ClientStats (a peer's report) -> *out. 0, or -EPROTO. */
int wire_registry_stats_from(const Spillway__ClientStats *m, struct reg_client_stats *out);

/* Extents an identity owns (RegisterReply, AllocExtentReply) -> messages in
 * store, pointed to by ptrs (both n long). */
void wire_registry_extents(const struct reg_extent_info *v, size_t n,
			   Spillway__ExtentInfo *store, Spillway__ExtentInfo **ptrs);

#endif
