/* SPDX-License-Identifier: MIT */
/* spillwayd's rdma:// listeners (see rdma_listen.c). */
#ifndef SPILLWAY_RDMA_LISTEN_H
#define SPILLWAY_RDMA_LISTEN_H

#include "url.h"

struct server;

/* Listen on u (text as the operator wrote it, for messages). 0 or -errno,
 * with the reason logged: no device, a port that is down, RLIMIT_MEMLOCK
 * too low for the pool, an address no RDMA device has. */
int rdma_listener_start(struct server *s, const struct url *u, const char *text);
/* Accept no more connections (shutdown begins). */
void rdma_listeners_pause(void);
void rdma_listeners_stop(void);

#endif
