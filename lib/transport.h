/* SPDX-License-Identifier: MIT */
/*
 * The client side's constructor of streams (stream.h): connect to a URL,
 * with the transport its scheme names (tcp, unix, rdma). What a connection
 * does once connected is the stream's business; this file only makes one.
 */
#ifndef SPILLWAY_TRANSPORT_H
#define SPILLWAY_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>

#include "stream.h"
#include "url.h"

struct transport_params {
	int timeout_ms;          /* bounds connecting and, after, recv_wait */
	/* The identity token this connection will resume or join (NULL: none
	 * yet). RDMA sends it at connect time, so the server can put the queue
	 * pair in the protection domain of that identity's extents. */
	const uint8_t *token;
	char *why;               /* filled with the reason when connect fails */
	size_t why_cap;
};

struct transport_ops {
	const char *scheme;
	int (*connect)(const struct url *u, const struct transport_params *p,
		       struct stream **out);
};

extern const struct transport_ops transport_tcp_ops;
extern const struct transport_ops transport_rdma_ops;
extern const struct transport_ops transport_unix_ops;

/* Parse url, pick the transport for its scheme, connect; when an rdma://
 * URL names a fallback= and RDMA setup fails, connect there instead (why
 * then says so). 0 or -errno (-EPROTONOSUPPORT for an unknown scheme). */
int transport_connect(const char *url, const struct transport_params *p,
		      struct stream **out);

#endif
