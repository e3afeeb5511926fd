/* SPDX-License-Identifier: MIT */
/*
 * The NBD listener (spillwayd --nbd HOST:PORT): an accept thread, and one
 * thread per connection (see nbd_conn.h). Off unless --nbd is given.
 * At most --nbd-max-connections are open; one more is closed as soon as it
 * is accepted. Each connection gets its time limits (handshake deadline,
 * idle and stall timeouts, docs/nbd.md "Limits") from the options at accept.
 */
#ifndef SPILLWAY_NBD_H
#define SPILLWAY_NBD_H

struct server;

/* Bind and listen (before the pool is mapped, so a busy port fails at once).
 * allow_remote: a non-loopback address is allowed. *port gets the bound port.
 * 0 or -errno (logged). */
int nbd_listen(struct server *s, const char *hostport, int allow_remote, int *port);
/* Start accepting. 0 or -errno. */
int nbd_start(void);
/* Stop accepting, end every connection, wait for their threads. */
void nbd_stop(void);

#endif
