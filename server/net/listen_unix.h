/* SPDX-License-Identifier: MIT */
/*
 * The admin socket: a local Unix stream socket (--admin-socket, default
 * /run/spillway/spillwayd.sock, mode 0660, group --admin-group if set) whose
 * connections go to the workers like TCP ones. Each is marked
 * local_operator when the kernel's SO_PEERCRED says its peer is uid 0 or in
 * --admin-group (primary or supplementary group); control_gate.c makes such
 * a session an operator. Any other peer is an ordinary session, exactly as
 * if it had come over TCP.
 */
#ifndef SPILLWAY_LISTEN_UNIX_H
#define SPILLWAY_LISTEN_UNIX_H

struct server;

/* Listen on s->opt.admin_socket (nothing for "none"). A stale socket file
 * nobody listens on is replaced; one in use, or anything not a socket, is
 * not. When the path was not given explicitly, failing to listen is a
 * warning and the server runs without it; otherwise 0 or -errno. */
int listen_unix_start(struct server *s);
/* Stop accepting and remove the socket file. */
void listen_unix_stop(void);

#endif
