/* SPDX-License-Identifier: MIT */
/* spillwayd's tcp:// listeners (see listen_tcp.c). */
#ifndef SPILLWAY_LISTEN_TCP_H
#define SPILLWAY_LISTEN_TCP_H

#include "url.h"

struct server;
struct event_base;
struct evconnlistener;
struct listen_backoff;

/* Listen on u (text as the operator wrote it, for messages), in the main
 * thread's loop. 0 or -errno, with the reason logged. */
int listen_tcp_start(struct server *s, const struct url *u, const char *text);
/* Accept no more connections (shutdown begins); back-off timers stop too. */
void listen_tcp_pause(struct server *s);
void listen_tcp_stop(struct server *s);

/* Accept back-off for any libevent listener (the metrics one too): when
 * accept runs out of descriptors or memory, l is disabled for
 * --accept-backoff-ms and a timer on base (l's loop) re-enables it. name is
 * for log lines. Attach at start-up, before base runs. NULL: no memory. */
struct listen_backoff *listen_backoff_attach(struct evconnlistener *l, struct event_base *base,
					     const char *name);
/* Stop for good (shutdown): the timer no longer re-enables it. */
void listen_backoff_pause(struct listen_backoff *b);
/* Before l and base are freed. NULL is fine. */
void listen_backoff_free(struct listen_backoff *b);

#endif
