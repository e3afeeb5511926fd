/* SPDX-License-Identifier: MIT */
/*
 * A raw NBD client for the tests that speak the protocol byte by byte
 * (fixed newstyle, simple replies). Include after cmocka.h: failures assert.
 */
#ifndef SPILLWAY_TEST_NBD_RAW_H
#define SPILLWAY_TEST_NBD_RAW_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define IHAVEOPT 0x49484156454f5054ull

static inline void put32(uint8_t *p, uint32_t v) { p[0] = v >> 24; p[1] = v >> 16; p[2] = v >> 8; p[3] = v; }
static inline void put64(uint8_t *p, uint64_t v) { put32(p, v >> 32); put32(p + 4, (uint32_t)v); }
static inline void put16(uint8_t *p, uint16_t v) { p[0] = v >> 8; p[1] = (uint8_t)v; }
static inline uint32_t get32(const uint8_t *p) { return (uint32_t)p[0] << 24 | p[1] << 16 | p[2] << 8 | p[3]; }
static inline uint64_t get64(const uint8_t *p) { return (uint64_t)get32(p) << 32 | get32(p + 4); }

static inline int dial(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	struct timeval tv = { 20, 0 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	return fd;
}

static inline void sendall(int fd, const void *p, size_t n)
{
	assert_int_equal(send(fd, p, n, MSG_NOSIGNAL), (ssize_t)n);
}

static inline int recvall(int fd, void *p, size_t n)
{
	size_t got = 0;
	while (got < n) {
		ssize_t r = recv(fd, (uint8_t *)p + got, n - got, 0);
		if (r <= 0)
			return -1;
		got += (size_t)r;
	}
	return 0;
}

/* The server closed: recv sees EOF. */
static inline int closed(int fd)
{
	uint8_t b[256];
	ssize_t r;
	while ((r = recv(fd, b, sizeof(b), 0)) > 0)
		;
	return r == 0;
}

static inline int greet(int port, uint32_t cflags)
{
	int fd = dial(port);
	uint8_t h[18], f[4];
	assert_int_equal(recvall(fd, h, sizeof(h)), 0);
	assert_int_equal(get64(h), 0x4e42444d41474943ull);
	assert_int_equal(get64(h + 8), IHAVEOPT);
	put32(f, cflags);
	sendall(fd, f, 4);
	return fd;
}

static inline void send_opt(int fd, uint32_t opt, const void *data, uint32_t len)
{
	uint8_t h[16];
	put64(h, IHAVEOPT);
	put32(h + 8, opt);
	put32(h + 12, len);
	sendall(fd, h, sizeof(h));
	if (len)
		sendall(fd, data, len);
}

/* One option reply; returns its type, payload into buf (up to cap). */
static inline uint32_t opt_reply(int fd, uint32_t opt, uint8_t *buf, size_t cap, uint32_t *len)
{
	uint8_t h[20];
	assert_int_equal(recvall(fd, h, sizeof(h)), 0);
	assert_int_equal(get64(h), 0x3e889045565a9ull);
	assert_int_equal(get32(h + 8), opt);
	*len = get32(h + 16);
	assert_true(*len <= cap);
	assert_int_equal(recvall(fd, buf, *len), 0);
	return get32(h + 12);
}

/* NBD_OPT_GO for name; returns the export size. */
static inline uint64_t go(int fd, const char *name)
{
	uint8_t d[128], r[256];
	uint32_t n = (uint32_t)strlen(name), len;
	put32(d, n);
	memcpy(d + 4, name, n);
	put16(d + 4 + n, 0);
	send_opt(fd, 7, d, 6 + n);
	uint64_t size = 0;
	uint32_t type;
	while ((type = opt_reply(fd, 7, r, sizeof(r), &len)) == 3)
		if (r[0] == 0 && r[1] == 0)
			size = get64(r + 2);
	assert_int_equal(type, 1); /* ACK */
	return size;
}

static inline void request(int fd, uint16_t flags, uint16_t type, uint64_t handle, uint64_t off,
		    uint32_t len)
{
	uint8_t r[28];
	put32(r, 0x25609513);
	put16(r + 4, flags);
	put16(r + 6, type);
	put64(r + 8, handle);
	put64(r + 16, off);
	put32(r + 24, len);
	sendall(fd, r, sizeof(r));
}

/* A simple reply's error for handle; data (if no error) into buf. */
static inline uint32_t reply(int fd, uint64_t handle, void *buf, uint32_t len)
{
	uint8_t h[16];
	assert_int_equal(recvall(fd, h, sizeof(h)), 0);
	assert_int_equal(get32(h), 0x67446698);
	assert_int_equal(get64(h + 8), handle);
	uint32_t err = get32(h + 4);
	if (!err && len)
		assert_int_equal(recvall(fd, buf, len), 0);
	return err;
}

#endif
