/* SPDX-License-Identifier: MIT */
/*
 * The real algorithm of `spillway-bench pager`: sort 16-byte records (random
 * 64-bit key, payload derived from the key) in place with an introsort of
 * our own. Not qsort(3): glibc's allocates a merge buffer as large as the
 * input, which would be local memory outside the region under test. Quicksort
 * partitions stream through the region from both ends, the pattern a far
 * memory must handle well; once a partition fits the local budget the rest
 * is local work. Every record is checked afterwards.
 */
#include <errno.h>
#include <string.h>

#include "bench.h"
#include "bench_pager.h"

#define SMALL        16        /* insertion sort below this */
#define CLOCK_ABOVE  65536u    /* partitions this large read the clock */
#define PAYLOAD_SALT 0x736f727472656373ull

struct rec {
	uint64_t key, val;
};

_Static_assert(sizeof(struct rec) == RECS_BYTES, "record size");

struct sorter {
	uint64_t deadline;
	int timed_out;
};

static inline uint64_t payload(uint64_t key)
{
	return mix64(key ^ PAYLOAD_SALT);
}

static inline void swap_rec(struct rec *a, struct rec *b)
{
	struct rec t = *a;
	*a = *b;
	*b = t;
}

static void insertion(struct rec *a, size_t n)
{
	for (size_t i = 1; i < n; i++) {
		struct rec x = a[i];
		size_t j = i;
		for (; j > 0 && a[j - 1].key > x.key; j--)
			a[j] = a[j - 1];
		a[j] = x;
	}
}

static void sift_down(struct rec *a, size_t root, size_t n)
{
	for (size_t child; (child = 2 * root + 1) < n; root = child) {
		if (child + 1 < n && a[child].key < a[child + 1].key)
			child++;
		if (a[root].key >= a[child].key)
			return;
		swap_rec(&a[root], &a[child]);
	}
}

/* The introsort guard against quicksort's worst case. */
static void heapsort_recs(struct rec *a, size_t n)
{
	for (size_t i = n / 2; i-- > 0;)
		sift_down(a, i, n);
	for (size_t end = n; end-- > 1;) {
		swap_rec(&a[0], &a[end]);
		sift_down(a, 0, end);
	}
}

static uint64_t median3(uint64_t a, uint64_t b, uint64_t c)
{
	if (a > b) {
		uint64_t t = a;
		a = b;
		b = t;
	}
	return c < a ? a : c > b ? b : c;
}

/* Hoare partition; returns the split (elements < split all <= pivot). */
static size_t partition(struct rec *a, size_t n, uint64_t pivot)
{
	size_t i = 0, j = n - 1;
	for (;;) {
		while (a[i].key < pivot)
			i++;
		while (a[j].key > pivot)
			j--;
		if (i >= j)
			return j + 1;
		swap_rec(&a[i], &a[j]);
		i++;
		j--;
	}
}

static void introsort(struct sorter *s, struct rec *a, size_t n, int depth)
{
	while (n > SMALL && !s->timed_out) {
		if (n >= CLOCK_ABOVE && now_ns() > s->deadline) {
			s->timed_out = 1;
			return;
		}
		if (depth-- == 0) {
			heapsort_recs(a, n);
			return;
		}
		size_t split = partition(a, n, median3(a[0].key, a[n / 2].key, a[n - 1].key));
		/* Recurse into the smaller side, loop on the larger: O(log n) stack. */
		if (split < n - split) {
			introsort(s, a, split, depth);
			a += split;
			n -= split;
		} else {
			introsort(s, a + split, n - split, depth);
			n = split;
		}
	}
	if (n <= SMALL)
		insertion(a, n);
}

static int log2_floor(uint64_t n)
{
	int d = 0;
	while (n >>= 1)
		d++;
	return d;
}

void recs_fill(void *base, uint64_t n, uint64_t seed, struct recs_sum *sum)
{
	struct rec *a = base;
	*sum = (struct recs_sum){ 0 };
	for (uint64_t i = 0; i < n; i++) {
		uint64_t k = rng_next(&seed);
		a[i] = (struct rec){ k, payload(k) };
		sum->key_sum += k;
		sum->key_xor ^= k;
	}
}

int recs_sort(void *base, uint64_t n, uint64_t deadline_ns)
{
	struct sorter s = { .deadline = deadline_ns ? deadline_ns : UINT64_MAX };
	introsort(&s, base, n, 2 * log2_floor(n ? n : 1));
	return s.timed_out ? -ETIMEDOUT : 0;
}

uint64_t recs_verify(const void *base, uint64_t n, const struct recs_sum *sum)
{
	const struct rec *a = base;
	uint64_t key_sum = 0, key_xor = 0, errors = 0;
	for (uint64_t i = 0; i < n; i++) {
		errors += (i > 0 && a[i - 1].key > a[i].key) || a[i].val != payload(a[i].key);
		key_sum += a[i].key;
		key_xor ^= a[i].key;
	}
	/* A lost or duplicated record changes the sum and xor of the keys. */
	return errors + (key_sum != sum->key_sum || key_xor != sum->key_xor);
}

void work_sort(void *base, uint64_t bytes, uint64_t seed, const struct work_limits *l,
	       struct work_result *out)
{
	uint64_t n = bytes / RECS_BYTES;
	struct recs_sum sum;
	recs_fill(base, n, seed, &sum);
	uint64_t t0 = now_ns();
	int rc = recs_sort(base, n, t0 + (uint64_t)(l->sort_cap_s * 1e9));
	uint64_t t1 = now_ns();
	*out = (struct work_result){ .valid = 1, .timed_out = rc == -ETIMEDOUT, .ops = n,
				     .bytes = n * RECS_BYTES, .seconds = (double)(t1 - t0) / 1e9 };
	if (!out->timed_out)
		out->errors = recs_verify(base, n, &sum);
}
