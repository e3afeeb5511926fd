/* SPDX-License-Identifier: MIT */
/* The cluster arbiter's policy: badness, reclaim plans, admission. */
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "arbiter_policy.h"
#include "ctrl.h"

_Static_assert(ARB_NAME_MAX == CTRL_NAME_MAX, "a client name is the same everywhere");

#define PPM 1000000u

uint64_t arb_watermark(uint64_t capacity, unsigned pct)
{
	if (pct > 100)
		pct = 100;
	/* capacity * pct could overflow; split off the hundreds first. */
	return capacity / 100 * pct + capacity % 100 * pct / 100;
}

static unsigned high_pct(const struct arb_cluster *cl)
{
	unsigned h = cl->high_pct ? cl->high_pct : ARB_HIGH_PCT;
	return h > 100 ? 100 : h;
}

uint64_t arb_high_bytes(const struct arb_cluster *cl)
{
	return arb_watermark(cl->capacity, high_pct(cl));
}

uint64_t arb_low_bytes(const struct arb_cluster *cl)
{
	unsigned l = cl->low_pct ? cl->low_pct : ARB_LOW_PCT;
	return arb_watermark(cl->capacity, l > high_pct(cl) ? high_pct(cl) : l);
}

/* Pending bytes beyond what c holds are already returned, whatever the
 * server's bookkeeping says. */
static uint64_t pending_of(const struct arb_client *c)
{
	return c->pending < c->used ? c->pending : c->used;
}

uint64_t arb_excess(const struct arb_client *c)
{
	uint64_t keep = c->used - pending_of(c);
	return keep > c->reservation ? keep - c->reservation : 0;
}

/* part / whole in parts per million, capped at 10^6. */
static uint64_t ppm(uint64_t part, uint64_t whole)
{
	if (part >= whole)
		return part ? PPM : 0;
	/* part * 10^6 must fit in 64 bits: drop low bits of both (a ratio of
	 * clusters past 18 TB keeps 44 significant bits, plenty to rank). */
	while (whole > UINT64_MAX / PPM) {
		part >>= 1;
		whole >>= 1;
	}
	return part * PPM / whole;
}

static long long badness(const struct arb_client *c, uint64_t excess, uint64_t capacity)
{
	int prio = c->priority;
	if (prio <= ARB_PRIO_MIN || !excess)
		return 0;
	if (prio > ARB_PRIO_MAX)
		prio = ARB_PRIO_MAX;
	return (long long)ppm(excess, capacity) + 1000LL * (prio + 1000);
}

long long arb_badness(const struct arb_client *c, uint64_t capacity)
{
	return badness(c, arb_excess(c), capacity);
}

uint64_t arb_reclaim_target(const struct arb_cluster *cl, const struct arb_client *clients,
			    size_t n)
{
	if (cl->used < arb_high_bytes(cl))
		return 0;
	uint64_t need = cl->used - arb_low_bytes(cl), pending = 0;
	for (size_t i = 0; i < n && pending < need; i++)
		pending += pending_of(&clients[i]);
	return need > pending ? need - pending : 0;
}

/* a is chosen before b. Total, so the plan never depends on input order
 * beyond the index of two identically named clients. */
static bool ranks_before(const struct arb_client *cs, const struct arb_rank *a,
			 const struct arb_rank *b)
{
	if (a->score != b->score)
		return a->score > b->score;
	if (a->excess != b->excess)
		return a->excess > b->excess;
	int c = strncmp(cs[a->idx].name, cs[b->idx].name, sizeof(cs->name));
	return c ? c < 0 : a->idx < b->idx;
}

/* Max-heap by ranks_before: building it is O(n), and a plan pops only the
 * few victims it needs instead of sorting every client. */
static void sift_down(const struct arb_client *cs, struct arb_rank *h, size_t n, size_t i)
{
	for (;;) {
		size_t best = i, l = 2 * i + 1, r = l + 1;
		if (l < n && ranks_before(cs, &h[l], &h[best]))
			best = l;
		if (r < n && ranks_before(cs, &h[r], &h[best]))
			best = r;
		if (best == i)
			return;
		struct arb_rank t = h[i];
		h[i] = h[best];
		h[best] = t;
		i = best;
	}
}

static uint64_t round_up(uint64_t x, uint64_t unit)
{
	return x % unit ? x + (unit - x % unit) : x;
}

/* want <= excess. Whole extents free whole extents in the pool (and
 * libspillway gives back whole 2 MiB groups), so prefer them; never ask
 * for more than the excess, which would reach into the reservation. */
static uint64_t ask_bytes(uint64_t want, uint64_t excess, uint64_t extent)
{
	uint64_t a = round_up(want, extent);
	if (a <= excess)
		return a;
	a = round_up(want, ARB_PAGE);
	return a <= excess ? a : excess - excess % ARB_PAGE;
}

size_t arb_plan(const struct arb_cluster *cl, const struct arb_client *clients, size_t n,
		struct arb_victim *out, size_t out_cap, struct arb_rank *scratch,
		uint64_t *shortfall)
{
	uint64_t need = arb_reclaim_target(cl, clients, n);
	uint64_t extent = cl->extent_bytes ? round_up(cl->extent_bytes, ARB_PAGE) : ARB_EXTENT;
	size_t heap = 0, nv = 0;
	for (size_t i = 0; need && i < n; i++) {
		uint64_t ex = arb_excess(&clients[i]);
		long long s = badness(&clients[i], ex, cl->capacity);
		if (s > 0 && ex >= ARB_PAGE)
			scratch[heap++] = (struct arb_rank){ .score = s, .excess = ex, .idx = i };
	}
	for (size_t i = heap / 2; i-- > 0;)
		sift_down(clients, scratch, heap, i);
	while (need && heap && nv < out_cap) {
		struct arb_rank top = scratch[0];
		scratch[0] = scratch[--heap];
		sift_down(clients, scratch, heap, 0);
		uint64_t ask = ask_bytes(top.excess < need ? top.excess : need, top.excess, extent);
		out[nv++] = (struct arb_victim){ .idx = top.idx, .bytes = ask, .score = top.score };
		need = ask < need ? need - ask : 0;
	}
	if (shortfall)
		*shortfall = need;
	return nv;
}

int arb_admit(const struct arb_cluster *cl, const struct arb_client *c, uint64_t bytes)
{
	if (!bytes)
		return 0;
	if (c->limit && (c->used > c->limit || bytes > c->limit - c->used))
		return -EDQUOT;
	if (cl->used > cl->capacity || bytes > cl->capacity - cl->used)
		return -ENOSPC;
	/* Past the reservation, only while the cluster is under its high
	 * watermark: above it, the arbiter is taking such bytes back. */
	bool beyond = c->used > c->reservation || bytes > c->reservation - c->used;
	if (beyond && cl->used >= arb_high_bytes(cl))
		return -ENOSPC;
	return 0;
}
