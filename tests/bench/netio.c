/* SPDX-License-Identifier: MIT */
/*
 * A blocking TCP socket driven so that it cannot deadlock with many requests
 * in flight: sends never block (MSG_DONTWAIT, leftovers queued), and a wait
 * for replies polls for writability too while anything is queued. With an
 * empty send queue the wait is a plain blocking recv, which is the cheapest
 * way to sleep until a reply arrives.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench.h"

#define IO_TIMEOUT_MS 10000

int netio_init(struct netio *n, int fd, size_t tx_cap, size_t rx_cap)
{
	memset(n, 0, sizeof(*n));
	n->fd = fd;
	n->tx_cap = tx_cap;
	n->rx_cap = rx_cap;
	n->tx = malloc(tx_cap);
	n->rx = malloc(rx_cap);
	struct timeval tv = { IO_TIMEOUT_MS / 1000, 0 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (!n->tx || !n->rx) {
		netio_free(n);
		return -ENOMEM;
	}
	return 0;
}

void netio_free(struct netio *n)
{
	free(n->tx);
	free(n->rx);
	n->tx = n->rx = NULL;
}

static int flush(struct netio *n)
{
	while (n->tx_off < n->tx_len) {
		ssize_t w = send(n->fd, n->tx + n->tx_off, n->tx_len - n->tx_off,
				 MSG_DONTWAIT | MSG_NOSIGNAL);
		if (w < 0)
			return errno == EAGAIN ? 0 : -errno;
		n->tx_off += (size_t)w;
	}
	n->tx_off = n->tx_len = 0;
	return 0;
}

int netio_queue(struct netio *n, const struct iovec *iov, int cnt)
{
	size_t len = 0;
	for (int i = 0; i < cnt; i++)
		len += iov[i].iov_len;
	if (n->tx_len + len > n->tx_cap) {
		int rc = flush(n);
		if (rc)
			return rc;
		memmove(n->tx, n->tx + n->tx_off, n->tx_len - n->tx_off);
		n->tx_len -= n->tx_off;
		n->tx_off = 0;
		if (n->tx_len + len > n->tx_cap)
			return -ENOBUFS;
	}
	for (int i = 0; i < cnt; i++) {
		memcpy(n->tx + n->tx_len, iov[i].iov_base, iov[i].iov_len);
		n->tx_len += iov[i].iov_len;
	}
	/* Sent at the next netio_fill, together with whatever else is queued:
	 * the same batching the Spillway client does, so the two compare fairly. */
	return 0;
}

/* Make room at the end of rx by dropping consumed bytes. */
static void compact_rx(struct netio *n)
{
	if (n->rx_off == 0)
		return;
	memmove(n->rx, n->rx + n->rx_off, n->rx_len - n->rx_off);
	n->rx_len -= n->rx_off;
	n->rx_off = 0;
}

int netio_fill(struct netio *n)
{
	if (n->rx_len == n->rx_cap)
		compact_rx(n);
	if (n->rx_len == n->rx_cap)
		return -ENOBUFS;
	for (;;) {
		int rc = flush(n);
		if (rc)
			return rc;
		if (n->tx_len) {
			struct pollfd p = { .fd = n->fd, .events = POLLIN | POLLOUT };
			int r = poll(&p, 1, IO_TIMEOUT_MS);
			if (r == 0)
				return -ETIMEDOUT;
			if (r < 0 && errno != EINTR)
				return -errno;
			if (!(p.revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
		}
		ssize_t r = recv(n->fd, n->rx + n->rx_len, n->rx_cap - n->rx_len, 0);
		if (r > 0) {
			n->rx_len += (size_t)r;
			return (int)r;
		}
		if (r == 0)
			return -ECONNRESET;
		if (errno == EAGAIN)
			return -ETIMEDOUT;
		if (errno != EINTR)
			return -errno;
	}
}

static void nodelay(int fd)
{
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

static struct sockaddr_in loopback(int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return a;
}

int tcp_listen_loopback(int *port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	struct sockaddr_in a = loopback(0);
	socklen_t len = sizeof(a);
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) || listen(fd, 4) ||
	    getsockname(fd, (struct sockaddr *)&a, &len)) {
		int e = errno;
		close(fd);
		return -e;
	}
	*port = ntohs(a.sin_port);
	return fd;
}

int tcp_connect_loopback(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	struct sockaddr_in a = loopback(port);
	if (connect(fd, (struct sockaddr *)&a, sizeof(a))) {
		int e = errno;
		close(fd);
		return -e;
	}
	nodelay(fd);
	return fd;
}

/* Bind port 0 and give the port back: a small race we accept for a bench. */
int free_tcp_port(void)
{
	int port, fd = tcp_listen_loopback(&port);
	if (fd < 0)
		return fd;
	close(fd);
	return port;
}
