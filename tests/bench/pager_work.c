/* SPDX-License-Identifier: MIT */
/*
 * The page workloads of `spillway-bench pager`: random 4 KiB reads and
 * writes, a sequential scan and Zipf key-value lookups. They see only a
 * pointer, so the same code runs on plain memory, a libspillway region and
 * memory the kernel swaps; the clock is read every few pages, which keeps
 * each case bounded by time rather than by a count that might take minutes
 * on the slowest memory.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "bench_pager.h"

#define WORDS        (BENCH_PAGE / 8)
#define CLOCK_EVERY  16u            /* pages between clock reads */
#define TAG_SALT     0x5370696c6c776179ull
#define ZIPF_THETA   0.99
/* Rank-to-page bijection for the Zipf keys: a prime is coprime with any
 * page count below it, so hot ranks land on scattered pages. */
#define SCRAMBLE     2654435761ull

static const char *const names[WORK_N] = { "random", "seq", "zipf", "sort" };

const char *work_name(int kind)
{
	return kind >= 0 && kind < WORK_N ? names[kind] : "?";
}

double work_ops_per_s(const struct work_result *w)
{
	return w->valid && !w->timed_out && w->seconds > 0 ? (double)w->ops / w->seconds : 0;
}

double work_mb_per_s(const struct work_result *w)
{
	return w->valid && !w->timed_out && w->seconds > 0 ? (double)w->bytes / w->seconds / 1e6 : 0;
}

static inline uint64_t tag_of(uint64_t page, uint8_t gen)
{
	return mix64(page ^ ((uint64_t)gen << 52) ^ TAG_SALT) | 1; /* never 0 */
}

int region_init(struct region *r, void *base, uint64_t bytes, uint64_t seed)
{
	*r = (struct region){ .base = base, .npages = bytes / BENCH_PAGE, .rng = seed };
	r->gen = calloc(r->npages ? r->npages : 1, 1);
	return r->gen ? 0 : -ENOMEM;
}

void region_fini(struct region *r)
{
	free(r->gen);
	r->gen = NULL;
}

static inline uint64_t *page_at(const struct region *r, uint64_t i)
{
	return (uint64_t *)(r->base + i * BENCH_PAGE);
}

/* New random contents; built on the stack and copied in one go, so the far
 * page sees one 4 KiB write, as a program's buffer copy would. */
static void write_page(struct region *r, uint64_t i)
{
	uint64_t w[WORDS];
	uint8_t g = ++r->gen[i];
	w[0] = tag_of(i, g);
	for (unsigned k = 1; k < WORDS - 1; k++)
		w[k] = rng_next(&r->rng);
	w[WORDS - 1] = ~w[0];
	memcpy(page_at(r, i), w, sizeof(w));
}

/* Read all 4 KiB; 1 if the tags are wrong. */
static int read_page(struct region *r, uint64_t i)
{
	const uint64_t *p = page_at(r, i);
	uint64_t sum = 0;
	for (unsigned k = 0; k < WORDS; k++)
		sum += p[k];
	r->sink += sum;
	uint64_t t = tag_of(i, r->gen[i]);
	return p[0] != t || p[WORDS - 1] != ~t;
}

void region_fill(struct region *r)
{
	for (uint64_t i = 0; i < r->npages; i++)
		write_page(r, i);
}

/* Run op(r, i) on pages chosen by next() until the time is up. */
static void timed(struct region *r, double seconds, uint64_t (*next)(struct region *, void *),
		  void *arg, int writes, struct work_result *out)
{
	uint64_t t0 = now_ns(), limit = (uint64_t)(seconds * 1e9), ops = 0, errors = 0, t = t0;
	do {
		for (unsigned k = 0; k < CLOCK_EVERY; k++, ops++) {
			uint64_t i = next(r, arg);
			/* Half the random ops write: the low bit of a fresh draw. */
			if (writes && (rng_next(&r->rng) & 1))
				write_page(r, i);
			else
				errors += (uint64_t)read_page(r, i);
		}
		t = now_ns();
	} while (t - t0 < limit);
	*out = (struct work_result){ .valid = 1, .ops = ops, .bytes = ops * BENCH_PAGE,
				     .seconds = (double)(t - t0) / 1e9, .errors = errors };
}

static uint64_t next_uniform(struct region *r, void *arg)
{
	(void)arg;
	return rng_below(&r->rng, r->npages);
}

void work_random(struct region *r, const struct work_limits *l, struct work_result *out)
{
	struct work_result warm = { 0 };
	if (l->warmup_s > 0)
		timed(r, l->warmup_s, next_uniform, NULL, 1, &warm);
	timed(r, l->seconds, next_uniform, NULL, 1, out);
	if (l->warmup_s > 0)
		out->errors += warm.errors;
}

void work_seq(struct region *r, const struct work_limits *l, struct work_result *out)
{
	uint64_t t0 = now_ns(), limit = (uint64_t)(l->seconds * 1e9), ops = 0, errors = 0, t;
	do {
		for (uint64_t i = 0; i < r->npages; i++, ops++)
			errors += (uint64_t)read_page(r, i);
		t = now_ns();
	} while (t - t0 < limit);
	*out = (struct work_result){ .valid = 1, .ops = ops, .bytes = ops * BENCH_PAGE,
				     .seconds = (double)(t - t0) / 1e9, .errors = errors };
}

struct zipf_arg {
	struct zipf z;
};

static uint64_t next_zipf(struct region *r, void *arg)
{
	struct zipf_arg *a = arg;
	uint64_t rank = zipf_next(&a->z, &r->rng);
	return (uint64_t)(((unsigned __int128)rank * SCRAMBLE) % r->npages);
}

void work_zipf(struct region *r, const struct work_limits *l, struct work_result *out)
{
	struct zipf_arg a;
	zipf_init(&a.z, r->npages, ZIPF_THETA);
	struct work_result warm = { 0 };
	if (l->warmup_s > 0)
		timed(r, l->warmup_s, next_zipf, &a, 0, &warm);
	timed(r, l->seconds, next_zipf, &a, 0, out);
	if (l->warmup_s > 0)
		out->errors += warm.errors;
}
