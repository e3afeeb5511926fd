/* SPDX-License-Identifier: MIT */
/*
 * The cluster arbiter's decisions, with no I/O and no state of their own:
 * how bad each client is (who gives memory back first), how much each
 * victim is asked for when the cluster passes its high watermark, and
 * whether an allocation is admitted. The caller owns every array; nothing
 * here allocates. docs/arbiter.md explains the policy for operators.
 *
 * Priority follows oom_score_adj: it is an adjustment to a client's
 * badness, -1000..1000. -1000 means never chosen; +1000 is chosen first.
 * A batch job that should yield before a database gets a higher number
 * (batch +500, database -500).
 */
#ifndef SPILLWAY_ARBITER_POLICY_H
#define SPILLWAY_ARBITER_POLICY_H

#include <stddef.h>
#include <stdint.h>

#define ARB_NAME_MAX      64                /* as CTRL_NAME_MAX */
#define ARB_PRIO_MIN      (-1000)           /* never chosen */
#define ARB_PRIO_MAX      1000
#define ARB_HIGH_PCT      90                /* default high watermark */
#define ARB_LOW_PCT       80                /* default low watermark */
#define ARB_PAGE          4096u
#define ARB_EXTENT        (2u << 20)        /* default reclaim granule */

/* One client as the arbiter sees it, summed over every server. */
struct arb_client {
	char name[ARB_NAME_MAX + 1];
	int priority;          /* -1000..1000; outside is clamped */
	uint64_t reservation;  /* bytes guaranteed */
	uint64_t limit;        /* hard cap in bytes; 0: none */
	uint64_t used;         /* bytes held, cluster-wide */
	uint64_t pending;      /* bytes asked back and not yet returned */
};

struct arb_cluster {
	uint64_t capacity;     /* bytes, all servers */
	uint64_t used;         /* bytes held, all servers */
	unsigned high_pct;     /* reclaim at or above this; 0: ARB_HIGH_PCT */
	unsigned low_pct;      /* ... down to this; 0: ARB_LOW_PCT; above high: high */
	uint64_t extent_bytes; /* reclaim granule (multiple of ARB_PAGE); 0: ARB_EXTENT */
};

/* One Reclaim to send. */
struct arb_victim {
	size_t idx;            /* into the clients array */
	uint64_t bytes;        /* to ask for: whole pages, never above its excess */
	long long score;       /* arb_badness when chosen */
};

/* Scratch for arb_plan: one per client. */
struct arb_rank {
	long long score;
	uint64_t excess;
	size_t idx;
};

/* pct (clamped to 100) of capacity, in bytes, without overflow. */
uint64_t arb_watermark(uint64_t capacity, unsigned pct);
/* The watermarks cl uses, defaults and clamping applied. */
uint64_t arb_high_bytes(const struct arb_cluster *cl);
uint64_t arb_low_bytes(const struct arb_cluster *cl);

/* What c holds beyond its reservation once its pending reclaim is
 * returned: used - pending - reservation, or 0. The most it can be asked. */
uint64_t arb_excess(const struct arb_client *c);

/*
 * How strongly c should give memory back; 0 means never (priority -1000, or
 * no excess). Otherwise, with excess_ppm = excess * 10^6 / capacity (capped
 * at 10^6):
 *
 *     badness = excess_ppm + 1000 * (priority + 1000)        (1000..3000000)
 *
 * that is, in per-mille of capacity, excess + priority + 1000: the oom
 * killer's points + oom_score_adj, shifted to stay positive. One point of
 * priority weighs as much as 0.1% of the cluster's capacity in excess.
 * More excess, or a higher priority, never lowers the score.
 */
long long arb_badness(const struct arb_client *c, uint64_t capacity);

/* Bytes still to free: when cl->used is at or above the high watermark,
 * used - low watermark - the pending bytes of all clients (0 if that is
 * negative); 0 below the high watermark. */
uint64_t arb_reclaim_target(const struct arb_cluster *cl, const struct arb_client *clients,
			    size_t n);

/*
 * Choose victims for arb_reclaim_target(cl, clients, n) bytes, in
 * decreasing badness (ties: larger excess, then name, then index), asking
 * each for at most its excess until the target is met. An ask is rounded up
 * to whole extents when the victim's excess allows it, else to whole pages,
 * and never exceeds the excess; a victim with less than a page of excess is
 * passed over. scratch holds n entries. Writes at most out_cap victims and
 * returns their count. *shortfall (if not NULL) gets the bytes of the
 * target no victim could cover (only reserved or priority -1000 memory
 * left, or out_cap reached); 0 when the plan meets it.
 */
size_t arb_plan(const struct arb_cluster *cl, const struct arb_client *clients, size_t n,
		struct arb_victim *out, size_t out_cap, struct arb_rank *scratch,
		uint64_t *shortfall);

/*
 * May c allocate bytes more? 0, or
 *   -EDQUOT  c->used + bytes would pass c's limit;
 *   -ENOSPC  the cluster's capacity cannot hold bytes, or they take c past
 *            its reservation while cl->used is at or above the high watermark.
 * Allocations within the reservation are admitted at any watermark while
 * capacity lasts. All or nothing: a request that only partly fits is refused.
 */
int arb_admit(const struct arb_cluster *cl, const struct arb_client *c, uint64_t bytes);

#endif
