/* SPDX-License-Identifier: MIT */
#include "reclaim.h"

#include <errno.h>
#include <stdatomic.h>

#include "conn.h"
#include "log.h"
#include "notify.h"
#include "registry.h"
#include "server.h"
#include "wire_cluster.h"

int reclaim_send(struct server *s, const char *name, uint64_t bytes, uint64_t deadline_ms,
		 uint64_t *id)
{
	static atomic_uint_fast64_t next_id = 1;
	uint64_t reclaim_id = atomic_fetch_add(&next_id, 1);
	int rc = notify_reclaim(s, name, reclaim_id, bytes, deadline_ms);
	if (!rc)
		*id = reclaim_id;
	return rc;
}

void reclaim_answered(struct conn *c, const struct reclaim_answer *m)
{
	atomic_store(&c->client->last_reclaim_freed, m->freed_bytes);
	atomic_store(&c->client->last_reclaim_id, m->reclaim_id);
	log_info("%s: client '%s' answered reclaim %llu: freed %llu bytes", c->peer,
		 c->client->name, (unsigned long long)m->reclaim_id,
		 (unsigned long long)m->freed_bytes);
}
