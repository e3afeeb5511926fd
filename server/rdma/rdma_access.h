/* SPDX-License-Identifier: MIT */
/*
 * When an RDMA connection's queue pair may reach memory. Every server QP is
 * accepted with no remote access (rdma_listen.c); this is the one place that
 * opens it, and it does so for a connection that has authenticated (Register
 * is only accepted then) and registered as the identity whose protection
 * domain its QP is in. Everything else (admin sessions, a connection that
 * registered as another identity than its token named, one that never got
 * past Hello) keeps a QP on which the peer's RDMA READ or WRITE fails.
 */
#ifndef SPILLWAY_RDMA_ACCESS_H
#define SPILLWAY_RDMA_ACCESS_H

struct conn;

/*
 * c has just registered (c->client set). For an RDMA connection: adopt or
 * match the identity's domain (c->onesided), and if it is the identity's,
 * open the QP to one-sided READ and WRITE. A QP that cannot be opened is
 * logged and leaves c->onesided 0 (KEY refused; frames still work).
 */
void rdma_access_registered(struct conn *c);

#endif
