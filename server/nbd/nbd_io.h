/* SPDX-License-Identifier: MIT */
/*
 * Socket I/O for NBD connections, and big-endian packing.
 *
 * Each connection's thread does blocking-style I/O through these calls, but
 * no call waits without bound: every wait is a poll() limited by the
 * connection's deadline (the handshake must end by then) and its stall limit
 * (the longest pause in a transfer that has started). When a wait runs out,
 * the call fails and io->timed_out says which limit it was. The first try of
 * every call is non-blocking, so a busy connection makes no extra system call.
 */
#ifndef SPILLWAY_NBD_IO_H
#define SPILLWAY_NBD_IO_H

#include <stddef.h>
#include <stdint.h>

enum nbd_io_timeout {
	NBD_IO_TIMED_OUT_NONE,
	NBD_IO_TIMED_OUT_STALL,    /* the deadline, or a transfer's pause ran out */
	NBD_IO_TIMED_OUT_IDLE,     /* no request began within the idle limit */
};

struct nbd_io {
	int fd;
	int64_t deadline_ms;       /* nbd_now_ms() by which all I/O must end; 0: none */
	int stall_ms;              /* longest wait for any progress; 0: no limit */
	enum nbd_io_timeout timed_out;
};

/* CLOCK_MONOTONIC in milliseconds. */
int64_t nbd_now_ms(void);

/* 0, or -1 on EOF, error or timeout (the connection is then done). */
int nbd_recv_full(struct nbd_io *io, void *buf, size_t n);
/* As nbd_recv_full, but the first byte may take up to idle_ms (0: forever)
 * instead of the stall limit: the wait between two requests. */
int nbd_recv_idle(struct nbd_io *io, void *buf, size_t n, int idle_ms);
int nbd_send_full(struct nbd_io *io, const void *buf, size_t n);
/* Two buffers as one send (header + data). */
int nbd_send2(struct nbd_io *io, const void *a, size_t an, const void *b, size_t bn);
/* Read and discard n bytes. */
int nbd_drain(struct nbd_io *io, uint64_t n);

static inline void nbd_put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static inline void nbd_put32(uint8_t *p, uint32_t v)
{
	nbd_put16(p, (uint16_t)(v >> 16));
	nbd_put16(p + 2, (uint16_t)v);
}
static inline void nbd_put64(uint8_t *p, uint64_t v)
{
	nbd_put32(p, (uint32_t)(v >> 32));
	nbd_put32(p + 4, (uint32_t)v);
}
static inline uint16_t nbd_get16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static inline uint32_t nbd_get32(const uint8_t *p)
{
	return (uint32_t)nbd_get16(p) << 16 | nbd_get16(p + 2);
}
static inline uint64_t nbd_get64(const uint8_t *p)
{
	return (uint64_t)nbd_get32(p) << 32 | nbd_get32(p + 4);
}

#endif
