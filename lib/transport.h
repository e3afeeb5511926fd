/* SPDX-License-Identifier: MIT */
/*
 * Client-side byte transports behind one small ops struct, chosen by URL
 * scheme. sendv and recv never block; callers wait on transport_fd() with
 * poll(), or, when they wait for input only, with recv_wait, which blocks
 * for at most the connect timeout (one system call instead of two on the
 * latency path). Return values: bytes moved, 0 for end of stream (recv),
 * -EAGAIN when the call would block (or recv_wait timed out), or -errno.
 */
#ifndef SPILLWAY_TRANSPORT_H
#define SPILLWAY_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "url.h"

struct transport;

struct transport_params {
	int timeout_ms;
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
		       struct transport **out);
	int (*fd)(struct transport *t);
	ssize_t (*sendv)(struct transport *t, const struct iovec *iov, int iovcnt);
	ssize_t (*recv)(struct transport *t, void *buf, size_t len);
	ssize_t (*recv_wait)(struct transport *t, void *buf, size_t len);
	void (*close)(struct transport *t);
	/* One-sided page transfer (RDMA; NULL elsewhere): see rdma_stream.h.
	 * recv_wait also returns -EINTR when only transfers completed. */
	int (*post_onesided)(struct transport *t, int write, uint64_t raddr, uint32_t rkey,
			     void *buf, size_t len, uint64_t cookie);
	int (*reap_onesided)(struct transport *t, uint64_t *cookie, int *status, int max);
};

struct transport {
	const struct transport_ops *ops;
};

extern const struct transport_ops transport_tcp_ops;
extern const struct transport_ops transport_rdma_ops;
extern const struct transport_ops transport_unix_ops;

/* A connected, blocking stream socket (TCP or Unix) with SO_RCVTIMEO set,
 * as a transport with transport_tcp_ops (it owns fd from here, also on
 * failure). 0 or -ENOMEM. */
int transport_stream_wrap(int fd, struct transport **out);

/* Parse url, pick the transport for its scheme, connect; when an rdma://
 * URL names a fallback= and RDMA setup fails, connect there instead (why
 * then says so). 0 or -errno (-EPROTONOSUPPORT for an unknown scheme). */
int transport_connect(const char *url, const struct transport_params *p,
		      struct transport **out);

static inline int transport_fd(struct transport *t) { return t->ops->fd(t); }
static inline ssize_t transport_sendv(struct transport *t, const struct iovec *iov, int n)
{
	return t->ops->sendv(t, iov, n);
}
static inline ssize_t transport_recv(struct transport *t, void *buf, size_t len)
{
	return t->ops->recv(t, buf, len);
}
static inline ssize_t transport_recv_wait(struct transport *t, void *buf, size_t len)
{
	return t->ops->recv_wait(t, buf, len);
}
static inline void transport_close(struct transport *t)
{
	if (t)
		t->ops->close(t);
}

#endif
