/* SPDX-License-Identifier: MIT */
/*
 * Binary buddy allocator.
 *
 * The free blocks of each order are bits in a bitmap (bit i: the block at
 * frame i << order is free), with a summary bitmap above it (bit w: word w of
 * the bitmap is non-zero), so finding the lowest free block reads at most one
 * summary word per 4096 blocks, and a hint skips the summary words known to be
 * empty. That gives the lowest-address block of the smallest sufficient order
 * without free lists threaded through memory we may not touch.
 *
 * One byte per frame holds order + 1 of the allocated block starting there
 * (0 elsewhere): buddy_free learns the order from it and refuses frames that
 * are not the head of a live block, which also catches double frees.
 */
#include "buddy.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>

struct buddy_level {
	uint64_t *bits;   /* bit per block of this order: free */
	uint64_t *sum;    /* bit per word of bits: word non-zero */
	uint64_t nblocks; /* whole blocks of this order inside the range */
	uint64_t nfree;
	uint64_t hint;    /* every sum word below this is zero */
};

struct buddy {
	uint64_t nframes;
	uint64_t free_frames;
	size_t meta_bytes;
	uint8_t *head;
	uint64_t *words; /* backing store of every level's bits and sum */
	struct buddy_level lv[BUDDY_MAX_ORDER + 1];
};

#define BIT(i) (UINT64_C(1) << ((i) & 63))

static void mark_free(struct buddy *b, unsigned k, uint64_t i)
{
	struct buddy_level *l = &b->lv[k];
	uint64_t w = i >> 6;

	l->bits[w] |= BIT(i);
	l->sum[w >> 6] |= BIT(w);
	if ((w >> 6) < l->hint)
		l->hint = w >> 6;
	l->nfree++;
}

static void mark_used(struct buddy *b, unsigned k, uint64_t i)
{
	struct buddy_level *l = &b->lv[k];
	uint64_t w = i >> 6;

	l->bits[w] &= ~BIT(i);
	if (!l->bits[w])
		l->sum[w >> 6] &= ~BIT(w);
	l->nfree--;
}

static bool is_free(const struct buddy *b, unsigned k, uint64_t i)
{
	return b->lv[k].bits[i >> 6] & BIT(i);
}

/* Lowest free block of a level that has at least one. */
static uint64_t first_free(struct buddy_level *l)
{
	uint64_t s = l->hint;

	while (!l->sum[s])
		s++;
	l->hint = s;
	uint64_t w = (s << 6) + (uint64_t)__builtin_ctzll(l->sum[s]);
	return (w << 6) + (uint64_t)__builtin_ctzll(l->bits[w]);
}

struct buddy *buddy_create(uint64_t nframes)
{
	if (nframes == 0) {
		errno = EINVAL;
		return NULL;
	}
	if (nframes > SIZE_MAX / 2) {
		errno = ENOMEM;
		return NULL;
	}
	struct buddy *b = calloc(1, sizeof(*b));
	if (!b)
		return NULL;
	b->nframes = nframes;

	uint64_t nwords[BUDDY_MAX_ORDER + 1], nsum[BUDDY_MAX_ORDER + 1];
	uint64_t total = 0;
	for (unsigned k = 0; k <= BUDDY_MAX_ORDER; k++) {
		b->lv[k].nblocks = nframes >> k;
		nwords[k] = (b->lv[k].nblocks + 63) / 64;
		nsum[k] = (nwords[k] + 63) / 64;
		total += nwords[k] + nsum[k];
	}
	b->head = calloc((size_t)nframes, 1);
	b->words = calloc((size_t)total, sizeof(uint64_t));
	if (!b->head || !b->words) {
		buddy_destroy(b);
		errno = ENOMEM;
		return NULL;
	}
	uint64_t *p = b->words;
	for (unsigned k = 0; k <= BUDDY_MAX_ORDER; k++) {
		b->lv[k].bits = p;
		p += nwords[k];
		b->lv[k].sum = p;
		p += nsum[k];
	}
	b->meta_bytes = sizeof(*b) + (size_t)nframes + (size_t)total * sizeof(uint64_t);

	/* Going up from 0 with the largest block that fits keeps each aligned. */
	for (uint64_t f = 0; f < nframes;) {
		unsigned k = BUDDY_MAX_ORDER;
		while (f + (UINT64_C(1) << k) > nframes || (f & ((UINT64_C(1) << k) - 1)))
			k--;
		mark_free(b, k, f >> k);
		f += UINT64_C(1) << k;
	}
	b->free_frames = nframes;
	return b;
}

void buddy_destroy(struct buddy *b)
{
	if (!b)
		return;
	free(b->head);
	free(b->words);
	free(b);
}

int buddy_alloc(struct buddy *b, unsigned order, uint64_t *frame)
{
	if (order > BUDDY_MAX_ORDER)
		return -EINVAL;
	unsigned k = order;
	while (k <= BUDDY_MAX_ORDER && b->lv[k].nfree == 0)
		k++;
	if (k > BUDDY_MAX_ORDER)
		return -ENOMEM;

	uint64_t i = first_free(&b->lv[k]);
	mark_used(b, k, i);
	uint64_t f = i << k;
	while (k > order) {
		k--;
		mark_free(b, k, (f >> k) + 1); /* upper half */
	}
	b->head[f] = (uint8_t)(order + 1);
	b->free_frames -= UINT64_C(1) << order;
	*frame = f;
	return 0;
}

int buddy_free(struct buddy *b, uint64_t frame)
{
	if (frame >= b->nframes || !b->head[frame])
		return -EINVAL;
	unsigned k = b->head[frame] - 1u;
	b->head[frame] = 0;
	b->free_frames += UINT64_C(1) << k;

	uint64_t i = frame >> k;
	while (k < BUDDY_MAX_ORDER) {
		uint64_t bud = i ^ 1;
		/* A buddy past the range end was never a block: nothing to merge. */
		if (bud >= b->lv[k].nblocks || !is_free(b, k, bud))
			break;
		mark_used(b, k, bud);
		i >>= 1;
		k++;
	}
	mark_free(b, k, i);
	return 0;
}

int buddy_block_order(const struct buddy *b, uint64_t frame)
{
	if (frame >= b->nframes || !b->head[frame])
		return -EINVAL;
	return b->head[frame] - 1;
}

uint64_t buddy_total_frames(const struct buddy *b)
{
	return b->nframes;
}

uint64_t buddy_free_frames(const struct buddy *b)
{
	return b->free_frames;
}

uint64_t buddy_free_blocks(const struct buddy *b, unsigned order)
{
	return order > BUDDY_MAX_ORDER ? 0 : b->lv[order].nfree;
}

size_t buddy_metadata_bytes(const struct buddy *b)
{
	return b ? b->meta_bytes : 0;
}

unsigned buddy_order_for(uint64_t nframes)
{
	if (nframes <= 1)
		return 0;
	return 64u - (unsigned)__builtin_clzll(nframes - 1);
}
