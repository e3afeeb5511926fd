/* SPDX-License-Identifier: MIT */
/* CRC32C (Castagnoli), the checksum of every Spillway frame. */
#ifndef SPILLWAY_CRC32C_H
#define SPILLWAY_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Continue a CRC: crc32c(0, a) then crc32c(that, b) equals crc32c over a||b. */
uint32_t crc32c(uint32_t crc, const void *buf, size_t len);

/*
 * The raw register form, for building a CRC from pieces without reading
 * their bytes again:
 *   crc32c(c, buf)          == ~crc32c_raw(~c, buf)
 *   crc32c_raw(s, A || B)   == crc32c_raw(crc32c_raw(s, A), B)
 *   crc32c_raw(s, page)     == crc32c_shift_page(s) ^ crc32c_raw(0, page)
 * for any 4096-byte page. The server keeps crc32c_raw(0, page) of every page
 * it stores and answers READs from those.
 */
uint32_t crc32c_raw(uint32_t state, const void *buf, size_t len);
uint32_t crc32c_shift_page(uint32_t state);
/* crc32c_raw(0, page) for each of n consecutive 4096-byte pages. */
void crc32c_pages(const void *pages, size_t n, uint32_t *out);

#endif
