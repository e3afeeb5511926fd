/* SPDX-License-Identifier: MIT */
/*
 * Random 4 KiB NBD requests with a fixed number in flight on one connection,
 * the same client for every server measured. Fixed newstyle, NBD_OPT_GO.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench.h"
#include "bench_nbd.h"

static void be32(uint8_t *p, uint32_t v) { p[0] = v >> 24; p[1] = v >> 16; p[2] = v >> 8; p[3] = (uint8_t)v; }
static void be64(uint8_t *p, uint64_t v) { be32(p, v >> 32); be32(p + 4, (uint32_t)v); }
static uint32_t rd32(const uint8_t *p) { return (uint32_t)p[0] << 24 | p[1] << 16 | p[2] << 8 | p[3]; }

static int xfer(int fd, void *buf, size_t n, int out)
{
	uint8_t *p = buf;
	while (n) {
		ssize_t r = out ? send(fd, p, n, MSG_NOSIGNAL) : recv(fd, p, n, 0);
		if (r <= 0)
			return -EIO;
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

static int nbd_go(int fd, const char *name)
{
	uint8_t h[18], f[4], o[16 + 6 + 256], r[20], d[512];
	if (xfer(fd, h, 18, 0))
		return -EIO;
	be32(f, 3);
	if (xfer(fd, f, 4, 1))
		return -EIO;
	uint32_t n = (uint32_t)strlen(name);
	be64(o, 0x49484156454f5054ull);
	be32(o + 8, 7);
	be32(o + 12, 6 + n);
	be32(o + 16, n);
	memcpy(o + 20, name, n);
	o[20 + n] = o[21 + n] = 0;
	if (xfer(fd, o, 22 + n, 1))
		return -EIO;
	for (;;) {
		if (xfer(fd, r, 20, 0))
			return -EIO;
		uint32_t type = rd32(r + 12), len = rd32(r + 16);
		if (len > sizeof(d) || xfer(fd, d, len, 0))
			return -EIO;
		if (type == 1)
			return 0;
		if (type != 3)
			return -ENOENT;
	}
}

double nbd_random_4k(int port, const char *name, uint64_t size, int write, unsigned depth,
		     double seconds)
{
	int fd = tcp_connect_loopback(port);
	if (fd < 0)
		return fd;
	if (nbd_go(fd, name)) {
		close(fd);
		return -EIO;
	}
	uint64_t pages = size / 4096, x = 88172645463325252ull, done = 0, sent = 0;
	static uint8_t page[4096], rq[28 + 4096];
	memset(page, 0xa5, sizeof(page));
	uint64_t t0 = now_ns(), end = t0 + (uint64_t)(seconds * 1e9);
	int stop = 0, rc = 0;
	while (!rc && (!stop || sent > done)) {
		while (!stop && sent - done < depth) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			be32(rq, 0x25609513);
			rq[4] = rq[5] = 0;
			rq[6] = 0;
			rq[7] = write ? 1 : 0;
			be64(rq + 8, sent);
			be64(rq + 16, (x % pages) * 4096);
			be32(rq + 24, 4096);
			if (write)
				memcpy(rq + 28, page, 4096);
			if ((rc = xfer(fd, rq, write ? sizeof(rq) : 28, 1)))
				break;
			sent++;
		}
		uint8_t h[16];
		if (rc || (rc = xfer(fd, h, 16, 0)))
			break;
		if (rd32(h + 4)) {
			rc = -EIO;
			break;
		}
		if (!write && (rc = xfer(fd, page, 4096, 0)))
			break;
		done++;
		if ((done & 255) == 0 && now_ns() >= end)
			stop = 1;
	}
	double s = (double)(now_ns() - t0) / 1e9;
	close(fd);
	return rc ? rc : (double)done / s;
}
