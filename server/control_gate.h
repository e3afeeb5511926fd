/* SPDX-License-Identifier: MIT */
/*
 * The control gate: the one place that decides whether a control message may
 * reach its handler. Each message case has one rule (control.c's table):
 * the connection states it is accepted in, the privilege it needs, and
 * whether only the arbiter serves it. Privilege is checked here and nowhere
 * else.
 *
 * Roles (set by the control_gate_role_* calls below, never elsewhere):
 *   operator  may change quotas, ask for reclaim, drain, create and delete
 *             exports. Held by a session that proved the admin key
 *             (--admin-psk-file), or that came over the admin Unix socket
 *             from uid 0 or a member of --admin-group (SO_PEERCRED). The
 *             clients' key alone never makes an operator, and neither does
 *             a loopback TCP address.
 *   peer      may send PeerReport to the arbiter (speak for a server). Held
 *             by an operator; by a session that proved the admin key when
 *             one is configured, else the clients' key (then any holder of
 *             the clients' key can speak for a server: use --admin-psk-file
 *             in clusters); with no key at all, by every session (such a
 *             server listens on loopback only unless --insecure).
 * Reading (AdminStatus, ClusterInfo, AdminClusterStatus, AdminEvents,
 * export list) needs no role: any session past the handshake.
 */
#ifndef SPILLWAY_CONTROL_GATE_H
#define SPILLWAY_CONTROL_GATE_H

#include "conn.h"
#include "ctrl.h"
#include "frame.h"

/* Privilege bits held by a connection (conn.roles). */
#define GATE_ROLE_OPERATOR 1u
#define GATE_ROLE_PEER 2u

/* Bit of a connection state in gate_rule.states. */
#define GATE_IN(state) (1u << (state))
#define GATE_AFTER_AUTH (GATE_IN(CONN_READY) | GATE_IN(CONN_REGISTERED))

enum gate_priv {
	GATE_ANYONE,   /* any session in an accepted state */
	GATE_OPERATOR, /* GATE_ROLE_OPERATOR */
	GATE_PEER,     /* GATE_ROLE_PEER */
};

typedef void (*gate_handler)(struct conn *c, const struct frame_hdr *h, const Spillway__Ctrl *m);

struct gate_rule {
	Spillway__Ctrl__MsgCase kind;
	unsigned states;      /* GATE_IN bits of the states it is accepted in */
	enum gate_priv priv;
	int arbiter_only;     /* served by the arbiter; others say where it is */
	gate_handler handler;
	const char *what;     /* names the action in a refusal: "changing quotas" */
};

/* Find m's rule in table and check it against c. 1: call the rule's handler;
 * 0: refused (an Error reply is queued, or, before authentication, the
 * connection is failed). */
int control_gate_pass(struct conn *c, const struct frame_hdr *h, const Spillway__Ctrl *m,
		      const struct gate_rule *table, size_t n, const struct gate_rule **rule);

/* Hello answered: does this session still have to prove a key? Sets the
 * roles of a session that needs none. */
int control_gate_role_hello(struct conn *c);
/* Auth: the session proved the admin key (admin) or the clients' key. */
void control_gate_role_auth(struct conn *c, int admin);

#endif
