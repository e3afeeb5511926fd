/* SPDX-License-Identifier: MIT */
/*
 * Transfer buffers for NBD READ and WRITE data, shared by all connections.
 *
 * A request's data moves in pieces of at most NBD_BUF_SIZE bytes through one
 * buffer taken for that request and given back when it is answered, so no
 * connection keeps memory between requests, whatever sizes it has used.
 * At most nbd_buf_init's budget is in use at once; a request that finds none
 * free waits (bounded by the caller) and is otherwise refused. A few idle
 * buffers are kept for reuse (NBD_BUF_KEEP); the rest are unmapped at once.
 */
#ifndef SPILLWAY_NBD_BUF_H
#define SPILLWAY_NBD_BUF_H

#include <stdint.h>

#define NBD_BUF_SIZE (256u << 10)
#define NBD_BUF_KEEP 8

/* Budget in bytes: at most budget / NBD_BUF_SIZE buffers (at least one). */
void nbd_buf_init(uint64_t budget);
/* Unmap the kept buffers (none may be in use). */
void nbd_buf_destroy(void);

/* A buffer of NBD_BUF_SIZE bytes, waiting up to wait_ms (0: no wait) for one
 * to be free; NULL when none came in time or memory ran out (counted). */
uint8_t *nbd_buf_get(int wait_ms);
void nbd_buf_put(uint8_t *b);

#endif
