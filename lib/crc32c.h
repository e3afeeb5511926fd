/* SPDX-License-Identifier: MIT */
/* CRC32C (Castagnoli), the checksum of every Spillway frame. */
#ifndef SPILLWAY_CRC32C_H
#define SPILLWAY_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Continue a CRC: crc32c(0, a) then crc32c(that, b) equals crc32c over a||b. */
uint32_t crc32c(uint32_t crc, const void *buf, size_t len);

#endif
