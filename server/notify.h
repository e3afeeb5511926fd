/* SPDX-License-Identifier: MIT */
/*
 * Server-initiated control messages (Reclaim, Drain): delivered on a
 * connected client's control connection by the worker that owns it.
 */
#ifndef SPILLWAY_NOTIFY_H
#define SPILLWAY_NOTIFY_H

#include "spillway.pb-c.h"

struct server;

/* Queue msg for the connected client name; any thread. 0, -ENOENT when no
 * such client is connected, -ENOMEM. */
int notify_client(struct server *s, const char *name, const Spillway__Ctrl *msg);

#endif
