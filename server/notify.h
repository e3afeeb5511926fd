/* SPDX-License-Identifier: MIT */
/*
 * Server-initiated control messages (Reclaim, Drain): delivered on a
 * connected client's control connection by the worker that owns it.
 * Callers pass plain values; the message is packed once
 * (server/wire/wire_notify.c) and the same bytes go to every worker.
 */
#ifndef SPILLWAY_NOTIFY_H
#define SPILLWAY_NOTIFY_H

#include <stdint.h>

struct server;

/* Each queues one message for the connected client name, from any thread,
 * and returns 0, -ENOENT when no such client is connected, or -ENOMEM. */

/* Reclaim: give bytes back within deadline_ms, answering with reclaim_id. */
int notify_reclaim(struct server *s, const char *name, uint64_t reclaim_id, uint64_t bytes,
		   uint64_t deadline_ms);
/* Drain: this server takes no new extents (on) or does again (!on). */
int notify_drain(struct server *s, const char *name, int on);

#endif
