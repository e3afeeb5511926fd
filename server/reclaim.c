/* SPDX-License-Identifier: MIT */
#include "reclaim.h"

#include <errno.h>
#include <event2/event.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "conn.h"
#include "log.h"
#include "registry.h"
#include "server.h"
#include "worker.h"

struct delivery {
	struct worker *w;
	uint64_t client_id, ctrl_serial;
	uint64_t reclaim_id, bytes, deadline_ms;
};

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
		Spillway__Reclaim r = SPILLWAY__RECLAIM__INIT;
		r.reclaim_id = d->reclaim_id;
		r.bytes = d->bytes;
		r.deadline_ms = d->deadline_ms;
		Spillway__Ctrl msg = SPILLWAY__CTRL__INIT;
		msg.msg_case = SPILLWAY__CTRL__MSG_RECLAIM;
		msg.reclaim = &r;
		conn_reply_ctrl(c, NULL, &msg);
		break;
	}
	free(d);
}

int reclaim_send(struct server *s, const char *name, uint64_t bytes, uint64_t deadline_ms,
		 uint64_t *id)
{
	static atomic_uint_fast64_t next_id = 1;
	uint64_t client_id, serial;
	int rc = registry_reclaim_target(s->reg, name, &client_id, &serial);
	if (rc)
		return rc;
	*id = atomic_fetch_add(&next_id, 1);
	const struct timeval now = { 0, 0 };
	for (int i = 0; i < s->nworkers; i++) {
		struct delivery *d = malloc(sizeof(*d));
		if (!d)
			return -ENOMEM;
		*d = (struct delivery){ &s->workers[i], client_id, serial, *id, bytes, deadline_ms };
		/* Thread-safe: the server runs libevent with evthread locking. */
		if (event_base_once(s->workers[i].base, -1, EV_TIMEOUT, deliver, d, &now)) {
			free(d);
			return -ENOMEM;
		}
	}
	return 0;
}

void reclaim_answered(struct conn *c, const Spillway__ReclaimReply *m)
{
	atomic_store(&c->client->last_reclaim_freed, m->freed_bytes);
	atomic_store(&c->client->last_reclaim_id, m->reclaim_id);
	log_info("%s: client '%s' answered reclaim %llu: freed %llu bytes", c->peer,
		 c->client->name, (unsigned long long)m->reclaim_id,
		 (unsigned long long)m->freed_bytes);
}
