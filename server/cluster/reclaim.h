/* SPDX-License-Identifier: MIT */
/*
 * Asking a client for memory back: a Reclaim message delivered on the
 * client's control connection (whichever worker owns it), and the client's
 * ReclaimReply recorded where spillctl and the arbiter can see it.
 */
#ifndef SPILLWAY_RECLAIM_H
#define SPILLWAY_RECLAIM_H

#include <stdint.h>

#include "cluster_msg.h"

struct server;
struct conn;

/* Send Reclaim(bytes, deadline) to the connected client name. 0 with the
 * reclaim id in *id, or -ENOENT when no such client is connected. */
int reclaim_send(struct server *s, const char *name, uint64_t bytes, uint64_t deadline_ms,
		 uint64_t *id);
/* A ReclaimReply arrived on c. */
void reclaim_answered(struct conn *c, const struct reclaim_answer *m);

#endif
