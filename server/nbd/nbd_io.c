/* SPDX-License-Identifier: MIT */
#include "nbd_io.h"

#include <errno.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>

int64_t nbd_now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* Wait until fd is ready for ev, at most limit_ms (0: no limit of its own)
 * and never past the deadline. 0 when ready, -1 on error or timeout (then
 * io->timed_out = why; the caller knows its phase, so a deadline that ran out
 * needs no mark of its own). */
static int wait_ready(struct nbd_io *io, short ev, int limit_ms, enum nbd_io_timeout why)
{
	int ms = limit_ms > 0 ? limit_ms : -1;
	if (io->deadline_ms) {
		int64_t left = io->deadline_ms - nbd_now_ms();
		if (left <= 0)
			left = 0;
		if (ms < 0 || left < ms)
			ms = (int)left;
	}
	struct pollfd p = { io->fd, ev, 0 };
	int r;
	do
		r = poll(&p, 1, ms);
	while (r < 0 && errno == EINTR);
	if (r == 0)
		io->timed_out = why;
	return r > 0 ? 0 : -1;
}

static int recv_some(struct nbd_io *io, uint8_t *p, size_t n, int limit_ms,
		     enum nbd_io_timeout why)
{
	for (;;) {
		ssize_t r = recv(io->fd, p, n, MSG_DONTWAIT);
		if (r > 0)
			return (int)r;
		if (r == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
			return -1;
		if (errno != EINTR && wait_ready(io, POLLIN, limit_ms, why))
			return -1;
	}
}

int nbd_recv_idle(struct nbd_io *io, void *buf, size_t n, int idle_ms)
{
	uint8_t *p = buf;
	if (n) {
		int r = recv_some(io, p, n, idle_ms, NBD_IO_TIMED_OUT_IDLE);
		if (r < 0)
			return -1;
		p += r;
		n -= (size_t)r;
	}
	return nbd_recv_full(io, p, n);
}

int nbd_recv_full(struct nbd_io *io, void *buf, size_t n)
{
	uint8_t *p = buf;
	while (n) {
		int r = recv_some(io, p, n > (1u << 30) ? (1u << 30) : n, io->stall_ms,
				  NBD_IO_TIMED_OUT_STALL);
		if (r < 0)
			return -1;
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

int nbd_send2(struct nbd_io *io, const void *a, size_t an, const void *b, size_t bn)
{
	struct iovec iov[2] = { { (void *)a, an }, { (void *)b, bn } };
	struct msghdr m = { .msg_iov = iov, .msg_iovlen = 2 };
	while (iov[0].iov_len || iov[1].iov_len) {
		ssize_t r = sendmsg(io->fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (wait_ready(io, POLLOUT, io->stall_ms, NBD_IO_TIMED_OUT_STALL))
				return -1;
			continue;
		}
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

int nbd_send_full(struct nbd_io *io, const void *buf, size_t n)
{
	return nbd_send2(io, buf, n, NULL, 0);
}

int nbd_drain(struct nbd_io *io, uint64_t n)
{
	uint8_t sink[16384];
	while (n) {
		size_t take = n < sizeof(sink) ? (size_t)n : sizeof(sink);
		if (nbd_recv_full(io, sink, take))
			return -1;
		n -= take;
	}
	return 0;
}
