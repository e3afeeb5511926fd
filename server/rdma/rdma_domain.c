/* SPDX-License-Identifier: MIT */
#include "rdma_domain.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <infiniband/verbs.h>

#include "log.h"

struct rdma_domain *rdma_domain_new(struct ibv_context *ctx)
{
	struct rdma_domain *d = calloc(1, sizeof(*d));
	if (!d)
		return NULL;
	d->pd = ibv_alloc_pd(ctx);
	if (!d->pd) {
		free(d);
		return NULL;
	}
	d->ctx = ctx;
	atomic_init(&d->refs, 1);
	return d;
}

void rdma_domain_get(struct rdma_domain *d)
{
	atomic_fetch_add(&d->refs, 1);
}

void rdma_domain_put(struct rdma_domain *d)
{
	if (!d || atomic_fetch_sub(&d->refs, 1) != 1)
		return;
	int rc = ibv_dealloc_pd(d->pd);
	if (rc)
		log_warn("rdma: protection domain still in use at release: %s", strerror(rc));
	free(d);
}
