/* SPDX-License-Identifier: MIT */
/*
 * Server-initiated control messages (notify.c) packed for the wire: a
 * Reclaim or a Drain, as the payload of an unsolicited SPILL_OP_CTRL frame.
 * Both are a few varints: WIRE_NOTIFY_MAX bytes always hold one.
 */
#ifndef SPILLWAY_WIRE_NOTIFY_H
#define SPILLWAY_WIRE_NOTIFY_H

#include <stddef.h>
#include <stdint.h>

#define WIRE_NOTIFY_MAX 64

/* Pack into buf (cap bytes). The length, or -EMSGSIZE. */
int wire_notify_reclaim(void *buf, size_t cap, uint64_t reclaim_id, uint64_t bytes,
			uint64_t deadline_ms);
int wire_notify_drain(void *buf, size_t cap, int on);

#endif
