/* SPDX-License-Identifier: MIT */
#include "rdma_access.h"

#include <string.h>

#include "conn.h"
#include "log.h"
#include "stream.h"
#include "registry.h"
#include "server.h"

void rdma_access_registered(struct conn *c)
{
	if (!c->rdma_dom)
		return;
	c->onesided = registry_rdma_adopt(c->srv->reg, c->client, c->rdma_dom);
	if (!c->onesided)
		return;
	int rc = stream_allow_remote(c->s);
	if (rc) {
		c->onesided = 0;
		log_warn("%s: cannot open the queue pair to one-sided access: %s", c->peer,
			 strerror(-rc));
	}
}
