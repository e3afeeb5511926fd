/* SPDX-License-Identifier: MIT */
/*
 * Binary buddy allocator over an abstract range of 4 KiB frames.
 *
 * It hands out frame offsets, not pointers, and keeps all of its metadata
 * outside the managed memory (that memory is lent to clients verbatim).
 * Blocks are 2^order frames, order 0 (4 KiB) to BUDDY_MAX_ORDER (1 GiB).
 * A range that is not a multiple of the top block size is carved into the
 * largest aligned blocks that fit.
 *
 * Not thread-safe: the owner (one pool) serialises calls.
 * Functions return 0 or -errno.
 */
#ifndef SPILLWAY_BUDDY_H
#define SPILLWAY_BUDDY_H

#include <stddef.h>
#include <stdint.h>

#define BUDDY_FRAME_SHIFT 12
#define BUDDY_FRAME_SIZE  (1u << BUDDY_FRAME_SHIFT)
#define BUDDY_MAX_ORDER   18 /* 2^18 frames = 1 GiB */

struct buddy;

/* Manage frames [0, nframes). Returns NULL with errno set on failure. */
struct buddy *buddy_create(uint64_t nframes);
void buddy_destroy(struct buddy *b);

/* Allocate 2^order frames aligned to their size; *frame gets the first frame.
 * -EINVAL for an order above BUDDY_MAX_ORDER, -ENOMEM when no block fits. */
int buddy_alloc(struct buddy *b, unsigned order, uint64_t *frame);

/* Free a block returned by buddy_alloc, merging with free buddies.
 * -EINVAL if frame is not the start of an allocated block (double free). */
int buddy_free(struct buddy *b, uint64_t frame);

/* Order of the allocated block starting at frame, or -EINVAL. */
int buddy_block_order(const struct buddy *b, uint64_t frame);

uint64_t buddy_total_frames(const struct buddy *b);
uint64_t buddy_free_frames(const struct buddy *b);
/* Free blocks currently on the list of one order (for tests and metrics). */
uint64_t buddy_free_blocks(const struct buddy *b, unsigned order);
/* Bytes of metadata the allocator holds (for the overhead figure). */
size_t buddy_metadata_bytes(const struct buddy *b);

/* Smallest order whose block holds nframes frames. */
unsigned buddy_order_for(uint64_t nframes);

#endif
