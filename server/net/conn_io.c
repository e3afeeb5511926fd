/* SPDX-License-Identifier: MIT */
/*
 * A connection's bytes in and out, over its TCP socket or its RDMA stream.
 * Both behave like non-blocking sockets: -1 with errno EAGAIN when nothing
 * can move, 0 from recv at end of stream.
 */
#include "conn_io.h"

#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "conn.h"
#include "rdma_domain.h"
#include "rdma_stream.h"

static ssize_t rdma_result(ssize_t n)
{
	if (n >= 0)
		return n;
	errno = (int)-n;
	return -1;
}

ssize_t conn_io_recv(struct conn *c, void *buf, size_t len)
{
	if (c->rdma)
		return rdma_result(rdma_stream_recv(c->rdma, buf, len));
	return recv(c->fd, buf, len, MSG_DONTWAIT);
}

ssize_t conn_io_sendv(struct conn *c, const struct iovec *iov, int iovcnt)
{
	if (c->rdma)
		return rdma_result(rdma_stream_sendv(c->rdma, iov, iovcnt));
	struct msghdr m = { .msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)iovcnt };
	return sendmsg(c->fd, &m, MSG_DONTWAIT | MSG_NOSIGNAL);
}

ssize_t conn_io_send_buffer(struct conn *c, struct evbuffer *b)
{
	if (!c->rdma)
		return evbuffer_write(b, c->fd);
	struct evbuffer_iovec v[16];
	struct iovec iov[16];
	int n = evbuffer_peek(b, -1, NULL, v, 16);
	if (n > 16)
		n = 16;
	for (int i = 0; i < n; i++)
		iov[i] = (struct iovec){ v[i].iov_base, v[i].iov_len };
	ssize_t sent = rdma_result(rdma_stream_sendv(c->rdma, iov, n));
	if (sent > 0)
		evbuffer_drain(b, (size_t)sent);
	return sent;
}

int conn_io_fd(const struct conn *c)
{
	return c->rdma ? rdma_stream_fd(c->rdma) : c->fd;
}

void conn_io_close(struct conn *c)
{
	if (c->rdma) {
		rdma_stream_destroy(c->rdma);
		c->rdma = NULL;
		rdma_domain_put(c->rdma_dom); /* after its QP is gone */
		c->rdma_dom = NULL;
	} else if (c->fd >= 0) {
		close(c->fd);
	}
	c->fd = -1;
}
