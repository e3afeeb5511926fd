/* SPDX-License-Identifier: MIT */
/* spillwayd's tcp:// listeners (see listen_tcp.c). */
#ifndef SPILLWAY_LISTEN_TCP_H
#define SPILLWAY_LISTEN_TCP_H

#include "url.h"

struct server;

/* Listen on u (text as the operator wrote it, for messages), in the main
 * thread's loop. 0 or -errno, with the reason logged. */
int listen_tcp_start(struct server *s, const struct url *u, const char *text);
/* Accept no more connections (shutdown begins); back-off timers stop too. */
void listen_tcp_pause(struct server *s);
void listen_tcp_stop(struct server *s);

#endif
