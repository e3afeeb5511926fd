/* SPDX-License-Identifier: MIT */
/*
 * TCP transport: a connected, blocking socket with a receive timeout; the
 * non-blocking calls say MSG_DONTWAIT. Its I/O goes through sysio.h, never
 * through the names libspillway interposes.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sysio.h"
#include "transport.h"

struct tcp_transport {
	struct transport base;
	int fd;
};

/* Non-blocking connect bounded by timeout_ms. */
static int connect_one(const struct addrinfo *ai, int timeout_ms)
{
	int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
			ai->ai_protocol);
	if (fd < 0)
		return -errno;
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0 && errno != EINPROGRESS) {
		int e = errno;
		close(fd);
		return -e;
	}
	struct pollfd p = { .fd = fd, .events = POLLOUT };
	int r = poll(&p, 1, timeout_ms);
	if (r <= 0) {
		close(fd);
		return r == 0 ? -ETIMEDOUT : -errno;
	}
	int err = 0;
	socklen_t len = sizeof(err);
	getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
	if (err) {
		close(fd);
		return -err;
	}
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	/* Blocking from here on, bounded by the timeout; every call that must
	 * not wait says MSG_DONTWAIT instead. */
	struct timeval tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	int fl = fcntl(fd, F_GETFL);
	if (fl >= 0)
		fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
	return fd;
}

static int tcp_connect(const struct url *u, const struct transport_params *p,
		       struct transport **out)
{
	int timeout_ms = p->timeout_ms;
	char port[16];
	snprintf(port, sizeof(port), "%d", u->port);
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res;
	if (getaddrinfo(u->host, port, &hints, &res))
		return -EHOSTUNREACH;
	int fd = -ENOENT;
	for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
		fd = connect_one(ai, timeout_ms);
		if (fd >= 0)
			break;
	}
	freeaddrinfo(res);
	if (fd < 0)
		return fd;
	return transport_stream_wrap(fd, out);
}

int transport_stream_wrap(int fd, struct transport **out)
{
	struct tcp_transport *t = calloc(1, sizeof(*t));
	if (!t) {
		close(fd);
		return -ENOMEM;
	}
	t->base.ops = &transport_tcp_ops;
	t->fd = fd;
	*out = &t->base;
	return 0;
}

static int tcp_fd(struct transport *t)
{
	return ((struct tcp_transport *)t)->fd;
}

static ssize_t tcp_sendv(struct transport *t, const struct iovec *iov, int iovcnt)
{
	struct msghdr m = { .msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)iovcnt };
	ssize_t n = sysio_sendmsg(tcp_fd(t), &m, MSG_NOSIGNAL | MSG_DONTWAIT);
	return n == -EWOULDBLOCK ? -EAGAIN : n;
}

static ssize_t tcp_recv(struct transport *t, void *buf, size_t len)
{
	ssize_t n = sysio_recv(tcp_fd(t), buf, len, MSG_DONTWAIT);
	return n == -EWOULDBLOCK ? -EAGAIN : n;
}

static ssize_t tcp_recv_wait(struct transport *t, void *buf, size_t len)
{
	ssize_t n = sysio_recv(tcp_fd(t), buf, len, 0);
	return n == -EWOULDBLOCK ? -EAGAIN : n;
}

static void tcp_close(struct transport *t)
{
	close(tcp_fd(t));
	free(t);
}

const struct transport_ops transport_tcp_ops = {
	.scheme = "tcp",
	.connect = tcp_connect,
	.fd = tcp_fd,
	.sendv = tcp_sendv,
	.recv = tcp_recv,
	.recv_wait = tcp_recv_wait,
	.close = tcp_close,
};
