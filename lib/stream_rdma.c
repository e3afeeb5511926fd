/* SPDX-License-Identifier: MIT */
/*
 * An RDMA stream (rdma_stream.h) as a struct stream, for both ends: the
 * client's connection (transport_rdma.c makes it) and the server's accepted
 * ones (rdma_listen.c). Its fd is an event channel (STREAM_EVENTS): frames
 * arrive in SEND messages, sends finish and the connection changes state,
 * all signalled on one descriptor. close destroys the queue pair first and
 * only then runs after_close, which releases the protection domain it lived
 * in: a domain must outlive every queue pair in it.
 */
#include <errno.h>
#include <stdlib.h>

#include "rdma_stream.h"
#include "stream.h"

#define SPIN_US 50 /* recv_wait: busy-poll before sleeping on the channel */

struct rdma_stream_wrap {
	struct stream base;
	struct rdma_stream *rs;
};

static const struct stream_ops rdma_ops;

static struct rdma_stream *rs_of(const struct stream *s)
{
	return ((const struct rdma_stream_wrap *)s)->rs;
}

int stream_rdma_wrap(struct rdma_stream *rs, int timeout_ms, void (*after_close)(void *arg),
		     void *arg, struct stream **out)
{
	struct rdma_stream_wrap *t = calloc(1, sizeof(*t));
	if (!t) {
		rdma_stream_destroy(rs);
		if (after_close)
			after_close(arg);
		return -ENOMEM;
	}
	t->base.ops = &rdma_ops;
	t->base.flags = STREAM_EVENTS;
	t->base.timeout_ms = timeout_ms;
	t->base.after_close = after_close;
	t->base.after_close_arg = arg;
	t->rs = rs;
	*out = &t->base;
	return 0;
}

static int rdma_fd(struct stream *s)
{
	return rdma_stream_fd(rs_of(s));
}

static ssize_t rdma_sendv(struct stream *s, const struct iovec *iov, int iovcnt)
{
	return rdma_stream_sendv(rs_of(s), iov, iovcnt);
}

static ssize_t rdma_recv(struct stream *s, void *buf, size_t len)
{
	return rdma_stream_recv(rs_of(s), buf, len);
}

static ssize_t rdma_recv_wait(struct stream *s, void *buf, size_t len)
{
	struct rdma_stream *rs = rs_of(s);
	for (;;) {
		ssize_t n = rdma_stream_recv(rs, buf, len);
		if (n != -EAGAIN)
			return n;
		if (rdma_stream_onesided_done(rs))
			return -EINTR;
		int w = rdma_stream_wait(rs, s->timeout_ms, SPIN_US);
		if (w < 0)
			return w;
		if (w == 0)
			return -EAGAIN;
	}
}

static int rdma_process(struct stream *s)
{
	rdma_stream_process(rs_of(s));
	return rdma_stream_error(rs_of(s));
}

static int rdma_has_input(const struct stream *s)
{
	return rdma_stream_has_input(rs_of(s));
}

static void rdma_close(struct stream *s)
{
	rdma_stream_destroy(rs_of(s));
	if (s->after_close)
		s->after_close(s->after_close_arg); /* after its QP is gone */
	free(s);
}

static int rdma_post(struct stream *s, int write, uint64_t raddr, uint32_t rkey, void *buf,
		     size_t len, uint64_t cookie)
{
	return rdma_stream_post_onesided(rs_of(s), write, raddr, rkey, buf, len, cookie);
}

static int rdma_reap(struct stream *s, uint64_t *cookie, int *status, int max)
{
	return rdma_stream_reap_onesided(rs_of(s), cookie, status, max);
}

static int rdma_allow_remote(struct stream *s)
{
	return rdma_stream_allow_remote(rs_of(s));
}

static const struct stream_ops rdma_ops = {
	.fd = rdma_fd,
	.sendv = rdma_sendv,
	.recv = rdma_recv,
	.recv_wait = rdma_recv_wait,
	.process = rdma_process,
	.has_input = rdma_has_input,
	.close = rdma_close,
	.post_onesided = rdma_post,
	.reap_onesided = rdma_reap,
	.allow_remote = rdma_allow_remote,
};
