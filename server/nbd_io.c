/* SPDX-License-Identifier: MIT */
#include "nbd_io.h"

#include <errno.h>
#include <sys/socket.h>
#include <sys/uio.h>

int nbd_recv_full(int fd, void *buf, size_t n)
{
	uint8_t *p = buf;
	while (n) {
		ssize_t r = recv(fd, p, n, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

int nbd_send2(int fd, const void *a, size_t an, const void *b, size_t bn)
{
	struct iovec iov[2] = { { (void *)a, an }, { (void *)b, bn } };
	struct msghdr m = { .msg_iov = iov, .msg_iovlen = 2 };
	while (iov[0].iov_len || iov[1].iov_len) {
		ssize_t r = sendmsg(fd, &m, MSG_NOSIGNAL);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		for (int i = 0; i < 2 && r; i++) {
			size_t take = (size_t)r < iov[i].iov_len ? (size_t)r : iov[i].iov_len;
			iov[i].iov_base = (uint8_t *)iov[i].iov_base + take;
			iov[i].iov_len -= take;
			r -= (ssize_t)take;
		}
		if (!iov[0].iov_len) {
			m.msg_iov = &iov[1];
			m.msg_iovlen = 1;
		}
	}
	return 0;
}

int nbd_send_full(int fd, const void *buf, size_t n)
{
	return nbd_send2(fd, buf, n, NULL, 0);
}

int nbd_drain(int fd, uint64_t n)
{
	uint8_t sink[65536];
	while (n) {
		size_t take = n < sizeof(sink) ? (size_t)n : sizeof(sink);
		if (nbd_recv_full(fd, sink, take))
			return -1;
		n -= take;
	}
	return 0;
}
