/* SPDX-License-Identifier: MIT */
/*
 * Raw-socket helpers for the tests that act as hostile peers of spillwayd:
 * dial from a chosen loopback source address, send bare frame headers, wait
 * for the server to close, read the server's memory and log. Include after
 * cmocka.h: failures assert.
 */
#ifndef SPILLWAY_TEST_SRV_RAW_H
#define SPILLWAY_TEST_SRV_RAW_H

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "frame.h"
#include "harness.h"

#define RAW_BOUND_MS 20000 /* only there to fail instead of hanging */

static inline uint64_t raw_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* A TCP connection to port from source address src ("127.0.0.2"), or -errno.
 * Non-blocking once connected. */
/* A connection from source address src to dst (port 0 in src: any),
 * non-blocking once connected; -errno on failure. */
static inline int raw_dial_addr(const struct sockaddr *src, const struct sockaddr *dst,
				socklen_t len)
{
	int fd = socket(dst->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, src, len) || connect(fd, dst, len)) {
		int e = errno;
		close(fd);
		return -e;
	}
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	return fd;
}

static inline int raw_dial_from(int port, const char *src)
{
	struct sockaddr_in a = { .sin_family = AF_INET }, d = a;
	inet_pton(AF_INET, src, &a.sin_addr);
	d.sin_port = htons((uint16_t)port);
	inet_pton(AF_INET, "127.0.0.1", &d.sin_addr);
	return raw_dial_addr((struct sockaddr *)&a, (struct sockaddr *)&d, sizeof(a));
}

/* The same to [::1]:port from an IPv6 source. */
static inline int raw_dial6_from(int port, const char *src)
{
	struct sockaddr_in6 a = { .sin6_family = AF_INET6 }, d = a;
	inet_pton(AF_INET6, src, &a.sin6_addr);
	d.sin6_port = htons((uint16_t)port);
	inet_pton(AF_INET6, "::1", &d.sin6_addr);
	return raw_dial_addr((struct sockaddr *)&a, (struct sockaddr *)&d, sizeof(a));
}

/* A sealed header for op announcing payload_len bytes (the payload itself
 * never matches the CRC; the server must not get that far). */
static inline void raw_send_header(int fd, uint16_t op, uint32_t payload_len, uint16_t npages)
{
	struct frame_hdr h = { .op = op, .req_id = 1, .payload_len = payload_len,
			       .npages = npages };
	struct spill_wire_hdr w;
	frame_hdr_pack(&h, &w);
	frame_seal(&w, NULL, 0);
	(void)send(fd, &w, sizeof(w), MSG_NOSIGNAL);
}

/* m becomes a Hello with a fixed nonce; hello and nonce must outlive it. */
static inline void raw_hello_msg(Spillway__Ctrl *m, Spillway__Hello *hello,
				 uint8_t nonce[CTRL_NONCE_BYTES])
{
	memset(nonce, 1, CTRL_NONCE_BYTES);
	spillway__hello__init(hello);
	hello->version = SPILL_WIRE_VERSION;
	hello->client_nonce.data = nonce;
	hello->client_nonce.len = CTRL_NONCE_BYTES;
	spillway__ctrl__init(m);
	m->msg_case = SPILLWAY__CTRL__MSG_HELLO;
	m->hello = hello;
}

/* Has the server closed fd (EOF or reset)? Reads and discards what came. */
static inline int raw_closed(int fd)
{
	static char sink[1 << 16];
	for (;;) {
		ssize_t n = recv(fd, sink, sizeof(sink), MSG_DONTWAIT);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK))
			return 1;
		if (n < 0)
			return 0;
	}
}

/* Read the next frame header from fd within the bound: 0 with *h, or -1
 * (nothing came, the stream ended, or the header is malformed). */
static inline int raw_read_header(int fd, struct frame_hdr *h)
{
	struct spill_wire_hdr w;
	size_t got = 0;
	while (got < sizeof(w)) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		if (poll(&p, 1, RAW_BOUND_MS) != 1)
			return -1;
		ssize_t n = recv(fd, (uint8_t *)&w + got, sizeof(w) - got, 0);
		if (n <= 0)
			return -1;
		got += (size_t)n;
	}
	return frame_hdr_unpack(&w, h, NULL) ? -1 : 0;
}

/* n pages of generation gen (page i seeded gen * 1000 + i), and the check
 * that buf holds them. */
static inline void raw_fill_gen(uint8_t *buf, unsigned n, uint64_t gen)
{
	for (unsigned i = 0; i < n; i++)
		fill_page(buf + (size_t)i * SPILL_PAGE_SIZE, gen * 1000 + (uint64_t)i);
}

static inline int raw_is_gen(const uint8_t *buf, unsigned n, uint64_t gen)
{
	for (unsigned i = 0; i < n; i++)
		if (!check_page(buf + (size_t)i * SPILL_PAGE_SIZE, gen * 1000 + (uint64_t)i))
			return 0;
	return 1;
}

/* Wait until the server closes fd; 0, or -1 past the bound. */
static inline int raw_wait_closed(int fd)
{
	uint64_t until = raw_now_ms() + RAW_BOUND_MS;
	while (raw_now_ms() < until) {
		if (raw_closed(fd))
			return 0;
		struct pollfd p = { .fd = fd, .events = POLLIN };
		poll(&p, 1, 200);
	}
	return -1;
}

/* Wait until series is at least want (exact: equal to it); its value, or -1
 * past the bound. */
static inline long long raw_wait_metric_is(const struct srv *s, const char *series,
					   long long want, int exact)
{
	uint64_t until = raw_now_ms() + RAW_BOUND_MS;
	for (;;) {
		long long v = srv_metric(s, series);
		if (exact ? v == want : v >= want)
			return v;
		if (raw_now_ms() >= until)
			return -1;
		struct pollfd none;
		poll(&none, 0, 50); /* between scrapes; the bound is what matters */
	}
}

static inline long long raw_wait_metric(const struct srv *s, const char *series, long long want)
{
	return raw_wait_metric_is(s, series, want, 0);
}

/* The server's resident set, in KiB (0 if unreadable). */
static inline long raw_vmrss_kib(pid_t pid)
{
	char path[64], line[256];
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "r");
	long kib = 0;
	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, "VmRSS:", 6))
			kib = atol(line + 6);
	if (f)
		fclose(f);
	return kib;
}

/* Lines of the server's log that contain text. */
static inline long raw_log_count(const struct srv *s, const char *text)
{
	FILE *f = fopen(s->log_path, "r");
	char line[2048];
	long n = 0;
	while (f && fgets(line, sizeof(line), f))
		n += strstr(line, text) != NULL;
	if (f)
		fclose(f);
	return n;
}

#endif
