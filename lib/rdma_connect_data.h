/* SPDX-License-Identifier: MIT */
/*
 * The private data of an RDMA connect request. It names the identity the
 * connection will resume or join (by its token), so the server can create
 * the queue pair in that identity's protection domain: every connection of
 * one identity then reaches its extents with the same keys, and no other
 * connection can. The token is sent in clear and proves nothing: the server
 * opens the QP to remote access only once the connection has authenticated
 * and registered as that identity (server/rdma/rdma_access.h). 24 bytes, well
 * under the 56 rdma_cm allows on RoCE.
 */
#ifndef SPILLWAY_RDMA_CONNECT_DATA_H
#define SPILLWAY_RDMA_CONNECT_DATA_H

#include <endian.h>
#include <stdint.h>
#include <string.h>

#include "ctrl.h"

#define RDMA_CONNECT_MAGIC   0x44525053u /* "SPRD" */
#define RDMA_CONNECT_VERSION 1
#define RDMA_CONNECT_TOKEN   1u          /* flags: token is set */

struct rdma_connect_data {
	uint32_t magic;     /* little-endian */
	uint8_t version;
	uint8_t flags;
	uint8_t pad[2];
	uint8_t token[CTRL_TOKEN_BYTES];
};

static inline void rdma_connect_data_pack(struct rdma_connect_data *d, const uint8_t *token)
{
	memset(d, 0, sizeof(*d));
	d->magic = htole32(RDMA_CONNECT_MAGIC);
	d->version = RDMA_CONNECT_VERSION;
	if (token) {
		d->flags = RDMA_CONNECT_TOKEN;
		memcpy(d->token, token, CTRL_TOKEN_BYTES);
	}
}

/* 1: a token, copied to token; 0: none; -1: not ours or malformed. */
static inline int rdma_connect_data_token(const void *data, size_t len, uint8_t *token)
{
	struct rdma_connect_data d;
	if (!data || len < sizeof(d))
		return -1;
	memcpy(&d, data, sizeof(d));
	if (le32toh(d.magic) != RDMA_CONNECT_MAGIC || d.version != RDMA_CONNECT_VERSION)
		return -1;
	if (!(d.flags & RDMA_CONNECT_TOKEN))
		return 0;
	memcpy(token, d.token, CTRL_TOKEN_BYTES);
	return 1;
}

#endif
