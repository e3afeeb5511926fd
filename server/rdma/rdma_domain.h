/* SPDX-License-Identifier: MIT */
/*
 * An RDMA protection domain shared by every connection of one identity and
 * by the memory regions of its extents. Queue pairs of other identities
 * live in other domains, so a remote key of this one is useless to them:
 * the HCA refuses the access (remote access error) without the server CPU
 * taking part. Reference counted: the identity holds one, each connection
 * one, as the PD must outlive every QP and MR in it.
 *
 * Being in the domain is not being trusted. A connection is placed here at
 * its connect request, from a token anyone on the path can read, before it
 * has authenticated; its QP therefore starts with no remote access at all
 * and gets it only once the connection has registered as the identity that
 * claimed this domain (rdma_access.c). A domain is claimed by one identity
 * only, once: a connection that registers as another identity never opens
 * its QP, and that identity never adopts this domain.
 */
#ifndef SPILLWAY_RDMA_DOMAIN_H
#define SPILLWAY_RDMA_DOMAIN_H

#include <stdatomic.h>

struct ibv_context;
struct ibv_pd;

struct rdma_domain {
	struct ibv_pd *pd;
	struct ibv_context *ctx;
	atomic_int refs;
	int claimed;   /* an identity owns it (set under the registry's lock) */
};

/* A new domain on ctx with one reference, or NULL (errno set). */
struct rdma_domain *rdma_domain_new(struct ibv_context *ctx);
void rdma_domain_get(struct rdma_domain *d);
void rdma_domain_put(struct rdma_domain *d);

#endif
