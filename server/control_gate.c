/* SPDX-License-Identifier: MIT */
/*
 * The control gate (see control_gate.h): state, privilege and arbiter checks
 * for every control message, and the roles a session gets from how it
 * authenticated. Before authentication a refused message closes the
 * connection; afterwards it gets an Error reply and the connection stays.
 */
#include "control_gate.h"

#include <stdio.h>

#include "server.h"

int control_gate_role_hello(struct conn *c)
{
	struct server *s = c->srv;
	if (c->local_operator) {
		/* The admin socket, and the kernel vouches for the peer (uid 0
		 * or --admin-group): that is the operator's credential, so no
		 * key is asked for. A client holding a key may still send Auth
		 * to make the server prove itself (auth_optional). */
		c->roles = GATE_ROLE_OPERATOR | GATE_ROLE_PEER;
		c->auth_optional = s->have_psk;
		return 0;
	}
	if (s->have_psk)
		return 1;
	/* No key at all: anyone who can connect speaks for a server (such a
	 * server listens on loopback unless --insecure); nobody is operator
	 * except over the admin socket. */
	c->roles = GATE_ROLE_PEER;
	return 0;
}

void control_gate_role_auth(struct conn *c, int admin)
{
	c->auth_optional = 0;
	if (admin)
		c->roles |= GATE_ROLE_OPERATOR | GATE_ROLE_PEER;
	else if (!c->srv->have_admin_psk)
		c->roles |= GATE_ROLE_PEER; /* the clients' key speaks for servers */
}

static const struct gate_rule *find(const struct gate_rule *table, size_t n,
				    Spillway__Ctrl__MsgCase kind)
{
	for (size_t i = 0; i < n; i++)
		if (table[i].kind == kind)
			return &table[i];
	return NULL;
}

/* Arbiter requests on a server that is not the arbiter: say where it is. */
static void refuse_not_arbiter(struct conn *c, const struct frame_hdr *h)
{
	char why[600];
	if (c->srv->opt.arbiter_url[0])
		snprintf(why, sizeof(why), "not the arbiter: ask %s", c->srv->opt.arbiter_url);
	else
		snprintf(why, sizeof(why), "not the arbiter, and no arbiter is configured");
	conn_reply_error(c, h, SPILL_ST_ENOTSUP, why);
}

static void refuse_privilege(struct conn *c, const struct frame_hdr *h, const struct gate_rule *r)
{
	char why[200];
	if (r->priv == GATE_OPERATOR)
		snprintf(why, sizeof(why),
			 "%s needs operator privilege: the admin key, or the admin socket "
			 "as root or a member of --admin-group", r->what);
	else
		snprintf(why, sizeof(why), "%s needs the admin key", r->what);
	metrics_inc(&server_stats.errors[STATS_ERR_AUTH], 1);
	conn_reply_error(c, h, SPILL_ST_EAUTH, why);
}

int control_gate_pass(struct conn *c, const struct frame_hdr *h, const Spillway__Ctrl *m,
		      const struct gate_rule *table, size_t n, const struct gate_rule **rule)
{
	const struct gate_rule *r = find(table, n, m->msg_case);
	unsigned in = GATE_IN(c->state);
	if (c->auth_optional && c->state == CONN_READY)
		in |= GATE_IN(CONN_AUTH);
	if (c->state == CONN_HELLO || c->state == CONN_AUTH) {
		if (!r || !(r->states & in)) {
			conn_reply_error(c, h, SPILL_ST_EAUTH, "handshake first (Hello, then Auth)");
			conn_fail(c, STATS_ERR_AUTH, "request before the handshake finished");
			return 0;
		}
	} else if (!r || !(r->states & in)) {
		if (r && (r->states & GATE_IN(CONN_REGISTERED)) && c->state == CONN_READY) {
			metrics_inc(&server_stats.errors[STATS_ERR_UNREGISTERED], 1);
			conn_reply_error(c, h, SPILL_ST_ENOREG, "register first");
		} else {
			conn_reply_error(c, h, SPILL_ST_ENOTSUP, "not a request this server accepts here");
		}
		return 0;
	}
	unsigned need = r->priv == GATE_OPERATOR ? GATE_ROLE_OPERATOR
		      : r->priv == GATE_PEER	 ? GATE_ROLE_PEER
						 : 0;
	if ((c->roles & need) != need) {
		refuse_privilege(c, h, r);
		return 0;
	}
	if (r->arbiter_only && !c->srv->arbiter) {
		refuse_not_arbiter(c, h);
		return 0;
	}
	*rule = r;
	return 1;
}
