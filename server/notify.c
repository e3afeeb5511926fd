/* SPDX-License-Identifier: MIT */
#include "notify.h"

#include <errno.h>
#include <event2/event.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "registry.h"
#include "server.h"
#include "wire_notify.h"
#include "worker.h"

/* One worker's share of a delivery; shares the packed message. */
struct delivery {
	struct worker *w;
	uint64_t client_id, ctrl_serial;
	struct packed *msg;
};

struct packed {
	atomic_int refs;
	size_t len;
	uint8_t bytes[];
};

static void packed_put(struct packed *p)
{
	if (atomic_fetch_sub(&p->refs, 1) == 1)
		free(p);
}

static int targets(const struct conn *c, const struct delivery *d)
{
	return c->state == CONN_REGISTERED && c->client && c->client->id == d->client_id &&
	       (d->ctrl_serial == 0 || c->serial == d->ctrl_serial);
}

/* Runs in the worker's own thread: only a connection's owner writes to it.
 * With the control connection known only it gets the message; if none is,
 * the client's first connection in each worker does. */
static void deliver(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct delivery *d = arg;
	for (struct conn *c = d->w->conns; c; c = c->next) {
		if (!targets(c, d))
			continue;
		conn_send_ctrl(c, d->msg->bytes, d->msg->len); /* may free c */
		break;
	}
	packed_put(d->msg);
	free(d);
}

/* Deliver the packed message (len bytes of msg) to name's workers. */
static int notify_packed(struct server *s, const char *name, const uint8_t *msg, int len)
{
	uint64_t client_id, serial;
	int rc = registry_reclaim_target(s->reg, name, &client_id, &serial);
	if (rc)
		return rc;
	struct packed *p = len > 0 ? malloc(sizeof(*p) + (size_t)len) : NULL;
	if (!p)
		return -ENOMEM;
	memcpy(p->bytes, msg, (size_t)len);
	p->len = (size_t)len;
	atomic_init(&p->refs, 1);
	const struct timeval now = { 0, 0 };
	for (int i = 0; i < s->nworkers; i++) {
		struct delivery *d = malloc(sizeof(*d));
		if (!d) {
			rc = -ENOMEM;
			break;
		}
		*d = (struct delivery){ &s->workers[i], client_id, serial, p };
		atomic_fetch_add(&p->refs, 1);
		/* Thread-safe: the server runs libevent with evthread locking. */
		if (event_base_once(s->workers[i].base, -1, EV_TIMEOUT, deliver, d, &now)) {
			packed_put(p);
			free(d);
			rc = -ENOMEM;
			break;
		}
	}
	packed_put(p);
	return rc;
}

int notify_reclaim(struct server *s, const char *name, uint64_t reclaim_id, uint64_t bytes,
		   uint64_t deadline_ms)
{
	uint8_t msg[WIRE_NOTIFY_MAX];
	return notify_packed(s, name, msg,
			     wire_notify_reclaim(msg, sizeof(msg), reclaim_id, bytes, deadline_ms));
}

int notify_drain(struct server *s, const char *name, int on)
{
	uint8_t msg[WIRE_NOTIFY_MAX];
	return notify_packed(s, name, msg, wire_notify_drain(msg, sizeof(msg), on));
}
