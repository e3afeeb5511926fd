/* SPDX-License-Identifier: MIT */
/* Blocking socket I/O for NBD connections, and big-endian packing. */
#ifndef SPILLWAY_NBD_IO_H
#define SPILLWAY_NBD_IO_H

#include <stddef.h>
#include <stdint.h>

/* 0, or -1 on EOF or error (the connection is then done). */
int nbd_recv_full(int fd, void *buf, size_t n);
int nbd_send_full(int fd, const void *buf, size_t n);
/* Two buffers as one send (header + data). */
int nbd_send2(int fd, const void *a, size_t an, const void *b, size_t bn);
/* Read and discard n bytes. */
int nbd_drain(int fd, uint64_t n);

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
