/* SPDX-License-Identifier: MIT */
/*
 * Stream sockets (TCP and Unix) as a struct stream, for both ends: the
 * client's connected sockets (blocking, with SO_RCVTIMEO) and the server's
 * accepted ones (non-blocking). Every call that must not wait says
 * MSG_DONTWAIT, so the two behave the same; only recv_wait waits, as the
 * socket does. Its I/O goes through sysio.h, never through the names
 * libspillway interposes.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "stream.h"
#include "sysio.h"

static const struct stream_ops socket_ops;

struct socket_stream {
	struct stream base;
	int fd;
};

int stream_socket_wrap(int fd, int timeout_ms, struct stream **out)
{
	struct socket_stream *t = calloc(1, sizeof(*t));
	if (!t) {
		close(fd);
		return -ENOMEM;
	}
	t->base.ops = &socket_ops;
	t->base.timeout_ms = timeout_ms;
	t->fd = fd;
	*out = &t->base;
	return 0;
}

static int socket_fd(struct stream *s)
{
	return ((struct socket_stream *)s)->fd;
}

static ssize_t socket_sendv(struct stream *s, const struct iovec *iov, int iovcnt)
{
	struct msghdr m = { .msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)iovcnt };
	ssize_t n = sysio_sendmsg(socket_fd(s), &m, MSG_NOSIGNAL | MSG_DONTWAIT);
	return n == -EWOULDBLOCK ? -EAGAIN : n;
}

static ssize_t socket_recv(struct stream *s, void *buf, size_t len)
{
	ssize_t n = sysio_recv(socket_fd(s), buf, len, MSG_DONTWAIT);
	return n == -EWOULDBLOCK ? -EAGAIN : n;
}

static ssize_t socket_recv_wait(struct stream *s, void *buf, size_t len)
{
	ssize_t n = sysio_recv(socket_fd(s), buf, len, 0);
	return n == -EWOULDBLOCK ? -EAGAIN : n;
}

static void socket_close(struct stream *s)
{
	close(socket_fd(s));
	if (s->after_close)
		s->after_close(s->after_close_arg);
	free(s);
}

static const struct stream_ops socket_ops = {
	.fd = socket_fd,
	.sendv = socket_sendv,
	.recv = socket_recv,
	.recv_wait = socket_recv_wait,
	.close = socket_close,
};
