/* SPDX-License-Identifier: MIT */
/*
 * The physical limits, measured in this process over loopback TCP (the same
 * measurements as /work/shared/limits/tcp_pingpong.c and tcp_stream.c):
 * request/response with a 4 KiB reply, and one-way streaming of 2 MiB writes.
 * The echo peer is also lent out (raw_echo_open) to the pager's limit probe.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench.h"

#define STREAM_CHUNK (BENCH_BATCH * BENCH_PAGE)

struct peer {
	int listen_fd;
	size_t req_bytes;
	int rc;
};

static int read_full(int fd, void *buf, size_t n)
{
	for (size_t off = 0; off < n;) {
		ssize_t r = read(fd, (uint8_t *)buf + off, n - off);
		if (r == 0)
			return -ECONNRESET;
		if (r < 0 && errno != EINTR)
			return -errno;
		if (r > 0)
			off += (size_t)r;
	}
	return 0;
}

static int write_full(int fd, const void *buf, size_t n)
{
	for (size_t off = 0; off < n;) {
		ssize_t w = send(fd, (const uint8_t *)buf + off, n - off, MSG_NOSIGNAL);
		if (w < 0 && errno != EINTR)
			return -errno;
		if (w > 0)
			off += (size_t)w;
	}
	return 0;
}

static int accept_one(int listen_fd)
{
	int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0)
		return -errno;
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

/* Echo thread: read one request, answer with one 4 KiB page, until EOF. */
static void *echo_main(void *arg)
{
	struct peer *p = arg;
	cpu_pin_self(bench_place.server_cpu);
	int fd = accept_one(p->listen_fd);
	uint8_t *req = malloc(p->req_bytes), page[BENCH_PAGE];
	memset(page, 7, sizeof(page));
	p->rc = fd < 0 ? fd : req ? 0 : -ENOMEM;
	while (!p->rc && read_full(fd, req, p->req_bytes) == 0)
		p->rc = write_full(fd, page, sizeof(page));
	free(req);
	if (fd >= 0)
		close(fd);
	return NULL;
}

/* Sink thread: read and discard until EOF. */
static void *sink_main(void *arg)
{
	struct peer *p = arg;
	cpu_pin_self(bench_place.server_cpu);
	int fd = accept_one(p->listen_fd);
	uint8_t *buf = malloc(STREAM_CHUNK);
	p->rc = fd < 0 ? fd : buf ? 0 : -ENOMEM;
	while (!p->rc) {
		ssize_t r = read(fd, buf, STREAM_CHUNK);
		if (r == 0)
			break;
		if (r < 0 && errno != EINTR)
			p->rc = -errno;
	}
	free(buf);
	if (fd >= 0)
		close(fd);
	return NULL;
}

/* Start a peer thread on a fresh loopback listener and connect to it. */
static int start_peer(struct peer *p, void *(*fn)(void *), pthread_t *th)
{
	int port;
	p->listen_fd = tcp_listen_loopback(&port);
	if (p->listen_fd < 0)
		return p->listen_fd;
	int rc = -pthread_create(th, NULL, fn, p);
	if (rc) {
		close(p->listen_fd);
		return rc;
	}
	int fd = tcp_connect_loopback(port);
	if (fd < 0) {
		shutdown(p->listen_fd, SHUT_RDWR); /* unblocks accept */
		pthread_join(*th, NULL);
		close(p->listen_fd);
	}
	return fd;
}

static int stop_peer(struct peer *p, pthread_t th, int fd)
{
	close(fd);
	pthread_join(th, NULL);
	close(p->listen_fd);
	return p->rc;
}

struct pingpong {
	struct netio io;
	const uint8_t *req;
	size_t req_bytes;
	int fifo[BENCH_MAX_DEPTH]; /* slots in submission order */
	unsigned head, count;
};

static int pp_submit(void *ctx, int slot, uint64_t seq)
{
	(void)seq;
	struct pingpong *pp = ctx;
	pp->fifo[(pp->head + pp->count++) % BENCH_MAX_DEPTH] = slot;
	struct iovec iov = { (void *)pp->req, pp->req_bytes };
	return netio_queue(&pp->io, &iov, 1);
}

static int pp_complete(void *ctx, int *slots, int max)
{
	struct pingpong *pp = ctx;
	while (netio_avail(&pp->io) < BENCH_PAGE) {
		int rc = netio_fill(&pp->io);
		if (rc < 0)
			return rc;
	}
	int n = 0;
	while (n < max && pp->count && netio_avail(&pp->io) >= BENCH_PAGE) {
		netio_consume(&pp->io, BENCH_PAGE);
		slots[n++] = pp->fifo[pp->head];
		pp->head = (pp->head + 1) % BENCH_MAX_DEPTH;
		pp->count--;
	}
	return n;
}

int raw_pingpong(const struct run_plan *p, size_t req_bytes, struct result *out)
{
	struct peer peer = { .req_bytes = req_bytes };
	pthread_t th;
	int fd = start_peer(&peer, echo_main, &th);
	if (fd < 0)
		return fd;
	struct pingpong pp = { .req_bytes = req_bytes };
	uint8_t *req = calloc(1, req_bytes);
	size_t qcap = (size_t)p->depth * req_bytes;
	int rc = req ? netio_init(&pp.io, fd, qcap, 64 * BENCH_PAGE + qcap) : -ENOMEM;
	if (!rc) {
		pp.req = req;
		struct driver d = { &pp, pp_submit, pp_complete };
		rc = run_pipelined(&d, p, out);
		shutdown(fd, SHUT_WR);
		netio_free(&pp.io);
	}
	free(req);
	int prc = stop_peer(&peer, th, fd);
	return rc ? rc : prc;
}

struct raw_echo {
	struct peer peer;
	pthread_t th;
	int fd;
};

int raw_echo_open(size_t req_bytes, struct raw_echo **out, int *fd)
{
	struct raw_echo *e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->peer.req_bytes = req_bytes;
	e->fd = start_peer(&e->peer, echo_main, &e->th);
	if (e->fd < 0) {
		int rc = e->fd;
		free(e);
		return rc;
	}
	*fd = e->fd;
	*out = e;
	return 0;
}

int raw_echo_close(struct raw_echo *e)
{
	if (!e)
		return 0;
	int rc = stop_peer(&e->peer, e->th, e->fd);
	free(e);
	return rc;
}

int raw_stream(uint64_t batches, double max_s, struct result *out)
{
	struct peer peer = { 0 };
	pthread_t th;
	int fd = start_peer(&peer, sink_main, &th);
	if (fd < 0)
		return fd;
	uint8_t *buf = malloc(STREAM_CHUNK);
	int rc = buf ? 0 : -ENOMEM;
	if (buf)
		memset(buf, 3, STREAM_CHUNK);
	uint64_t n = 0, t0 = now_ns(), max_ns = (uint64_t)(max_s * 1e9);
	while (!rc && n < batches && (!max_ns || now_ns() - t0 < max_ns)) {
		rc = write_full(fd, buf, STREAM_CHUNK);
		n += !rc;
	}
	/* The clock stops once the sink has read the last byte. */
	shutdown(fd, SHUT_WR);
	int prc = stop_peer(&peer, th, fd);
	uint64_t t1 = now_ns();
	free(buf);
	if (rc || prc)
		return rc ? rc : prc;
	*out = (struct result){ .valid = 1, .depth = 1, .ops = n, .bytes_per_op = STREAM_CHUNK,
				.seconds = (double)(t1 - t0) / 1e9, .p50_us = -1, .p99_us = -1 };
	return 0;
}
