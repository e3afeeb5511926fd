/* SPDX-License-Identifier: MIT */
/*
 * spillway-bench arbiter: the cluster arbiter's policy (server/
 * arbiter_policy.c) on a simulated cluster, no network. N clients in four
 * classes spread their memory over the servers; each client's demand swings
 * with a shared cycle plus its own random walk, and capacity is set so that
 * the cycle's peaks pass the high watermark. A client grows toward its
 * demand through arb_admit, shrinks by itself when demand falls, and gives
 * back what a Reclaim asked for 0 to 2 steps later (pending meanwhile).
 * Whenever the cluster is at or above the high watermark, arb_plan runs
 * (timed) and its victims are asked. Reported: time per decision, how the
 * reclaimed bytes split across classes against how the excess did, and the
 * two things that must never happen (a reservation broken, a -1000 client
 * chosen). Exit 1 if either did.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arbiter_policy.h"
#include "bench.h"
#include "bench_pager.h"

#define GiB     (UINT64_C(1) << 30)
#define HOMES   4      /* servers a client's memory spreads over */
#define PERIOD  400.0  /* steps in one demand cycle */

enum { C_DB, C_SVC, C_BATCH, C_PROT, NCLASS };

static const struct class_def {
	const char *name;
	int priority;
	unsigned share_pct;       /* of the clients */
	uint64_t reservation, limit, base; /* limit 0: none; base: mean demand */
	double swing;             /* amplitude of the shared cycle */
	double phase;             /* its offset in the cycle, 0..1 */
} classes[NCLASS] = {
	[C_DB] = { "database", -500, 10, 16 * GiB, 48 * GiB, 20 * GiB, 0.20, 0.0 },
	[C_SVC] = { "service", 0, 73, 2 * GiB, 12 * GiB, 4 * GiB, 0.30, 0.1 },
	[C_BATCH] = { "batch", 500, 15, 0, 12 * GiB, 6 * GiB, 0.60, 0.3 },
	[C_PROT] = { "protected", -1000, 2, 8 * GiB, 0, 14 * GiB, 0.30, 0.15 },
};

/* What the simulation knows about a client beyond the arbiter's view. */
struct sim_client {
	int cls;
	uint64_t base;       /* its mean demand */
	double walk;         /* its own drift, -0.3..0.3 of base */
	uint64_t due;        /* step at which its pending reclaim is returned */
	unsigned home[HOMES];
	uint64_t on[HOMES];  /* bytes on each home server */
};

struct sim {
	size_t n, nsrv;
	unsigned steps;
	uint64_t seed, rng, srv_cap;
	struct arb_cluster cl;
	struct arb_client *ac;    /* the arbiter's view, one per client */
	struct sim_client *sc;
	uint64_t *srv_used;
	struct arb_victim *victims;
	struct arb_rank *scratch;
	double *fill;             /* per-server fill, sorted per decision */
	struct lat_rec lat;
	/* results */
	unsigned decisions, short_plans, steps_over;
	uint64_t nvictims, shortfall, broken_reservations, protected_chosen;
	uint64_t excess[NCLASS], reclaimed[NCLASS];
	uint64_t admitted, refused_quota, refused_space, refused_server;
	double peak_pct, sum_pct, fill_min, fill_med, fill_max, fill_top;
};

static uint64_t extent_down(uint64_t x)
{
	return x - x % ARB_EXTENT;
}

/* The home server with the most room; -1 if none holds bytes. */
static int roomiest(const struct sim *s, const struct sim_client *c, uint64_t bytes)
{
	int best = -1;
	for (int k = 0; k < HOMES; k++) {
		uint64_t u = s->srv_used[c->home[k]];
		if (u + bytes <= s->srv_cap && (best < 0 || u < s->srv_used[c->home[best]]))
			best = k;
	}
	return best;
}

static void put(struct sim *s, size_t i, int k, uint64_t bytes)
{
	s->sc[i].on[k] += bytes;
	s->srv_used[s->sc[i].home[k]] += bytes;
	s->ac[i].used += bytes;
	s->cl.used += bytes;
}

/* Free bytes of client i, from the home server holding most of it. */
static void take(struct sim *s, size_t i, uint64_t bytes)
{
	struct sim_client *c = &s->sc[i];
	while (bytes) {
		int k = 0;
		for (int j = 1; j < HOMES; j++)
			if (c->on[j] > c->on[k])
				k = j;
		uint64_t b = bytes < c->on[k] ? bytes : c->on[k];
		if (!b)
			break;
		c->on[k] -= b;
		s->srv_used[c->home[k]] -= b;
		s->ac[i].used -= b;
		s->cl.used -= b;
		bytes -= b;
	}
}

/* Client i returns what it was asked for. */
static void comply(struct sim *s, size_t i)
{
	struct arb_client *a = &s->ac[i];
	int was_within = a->used >= a->reservation;
	take(s, i, a->pending);
	a->pending = 0;
	if (was_within && a->used < a->reservation)
		s->broken_reservations++;
}

/* A triangle wave over one cycle, -1..1, peaking at x = 0.25 (no libm). */
static double cycle(double x)
{
	double f = x - (double)(long long)x;
	return f < 0.25 ? 4 * f : f < 0.75 ? 2 - 4 * f : 4 * f - 4;
}

static uint64_t demand(struct sim *s, size_t i, unsigned step)
{
	struct sim_client *c = &s->sc[i];
	const struct class_def *d = &classes[c->cls];
	c->walk += ((double)rng_below(&s->rng, 2001) - 1000.0) / 50000.0;
	c->walk = c->walk > 0.3 ? 0.3 : c->walk < -0.3 ? -0.3 : c->walk;
	double f = 1.0 + d->swing * cycle(step / PERIOD + d->phase) + c->walk;
	return f > 0 ? (uint64_t)(f * (double)c->base) : 0;
}

/* Client i moves toward its demand: frees by itself (which counts against
 * a pending reclaim) or asks for more, at most base/16 a step. */
static void move(struct sim *s, size_t i, unsigned step)
{
	struct arb_client *a = &s->ac[i];
	uint64_t want = demand(s, i, step), rate = s->sc[i].base / 16 + ARB_EXTENT;
	if (a->used > want) {
		uint64_t d = extent_down(a->used - want < rate ? a->used - want : rate);
		take(s, i, d);
		a->pending -= a->pending < d ? a->pending : d;
		return;
	}
	uint64_t d = extent_down(want - a->used < rate ? want - a->used : rate);
	if (!d)
		return;
	int rc = arb_admit(&s->cl, a, d);
	if (rc == -EDQUOT) {
		s->refused_quota++;
		return;
	}
	if (rc) {
		s->refused_space++;
		return;
	}
	int k = roomiest(s, &s->sc[i], d);
	if (k < 0) {
		s->refused_server++;
		return;
	}
	put(s, i, k, d);
	s->admitted++;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static void server_fill(struct sim *s)
{
	for (size_t k = 0; k < s->nsrv; k++)
		s->fill[k] = 100.0 * (double)s->srv_used[k] / (double)s->srv_cap;
	qsort(s->fill, s->nsrv, sizeof(*s->fill), cmp_double);
	s->fill_min += s->fill[0];
	s->fill_med += s->fill[s->nsrv / 2];
	s->fill_max += s->fill[s->nsrv - 1];
	if (s->fill[s->nsrv - 1] > s->fill_top)
		s->fill_top = s->fill[s->nsrv - 1];
}

static void decide(struct sim *s, unsigned step)
{
	for (size_t i = 0; i < s->n; i++)
		s->excess[s->sc[i].cls] += arb_excess(&s->ac[i]);
	uint64_t shortfall, t0 = now_ns();
	size_t nv = arb_plan(&s->cl, s->ac, s->n, s->victims, s->n, s->scratch, &shortfall);
	lat_add(&s->lat, now_ns() - t0);
	s->decisions++;
	s->nvictims += nv;
	s->short_plans += shortfall > 0;
	s->shortfall += shortfall;
	server_fill(s);
	for (size_t v = 0; v < nv; v++) {
		size_t i = s->victims[v].idx;
		struct arb_client *a = &s->ac[i];
		if (a->priority <= ARB_PRIO_MIN)
			s->protected_chosen++;
		if (s->victims[v].bytes > arb_excess(a))
			s->broken_reservations++;
		a->pending += s->victims[v].bytes;
		s->sc[i].due = step + rng_below(&s->rng, 3);
		s->reclaimed[s->sc[i].cls] += s->victims[v].bytes;
		if (s->sc[i].due == step)
			comply(s, i);
	}
}

static void run(struct sim *s)
{
	for (unsigned step = 0; step < s->steps; step++) {
		for (size_t i = 0; i < s->n; i++)
			if (s->ac[i].pending && s->sc[i].due <= step)
				comply(s, i);
		/* A different client goes first each step, so none is always
		 * the one refused at the watermark. */
		size_t first = (size_t)rng_below(&s->rng, s->n);
		for (size_t j = 0; j < s->n; j++)
			move(s, (first + j) % s->n, step);
		double pct = 100.0 * (double)s->cl.used / (double)s->cl.capacity;
		s->sum_pct += pct;
		if (pct > s->peak_pct)
			s->peak_pct = pct;
		if (s->cl.used >= arb_high_bytes(&s->cl)) {
			s->steps_over++;
			decide(s, step);
		}
	}
}

static int sim_init(struct sim *s)
{
	s->ac = calloc(s->n, sizeof(*s->ac));
	s->sc = calloc(s->n, sizeof(*s->sc));
	s->victims = calloc(s->n, sizeof(*s->victims));
	s->scratch = calloc(s->n, sizeof(*s->scratch));
	s->srv_used = calloc(s->nsrv, sizeof(*s->srv_used));
	s->fill = calloc(s->nsrv, sizeof(*s->fill));
	if (!s->ac || !s->sc || !s->victims || !s->scratch || !s->srv_used || !s->fill ||
	    lat_init(&s->lat, s->steps))
		return -ENOMEM;
	s->rng = s->seed;
	uint64_t mean = 0;
	for (size_t i = 0; i < s->n; i++) {
		/* Classes by share: the first 10% databases, and so on. */
		unsigned pos = (unsigned)(i * 100 / s->n), acc = 0;
		int cls = 0;
		while (cls < NCLASS - 1 && pos >= acc + classes[cls].share_pct)
			acc += classes[cls++].share_pct;
		const struct class_def *d = &classes[cls];
		struct arb_client *a = &s->ac[i];
		snprintf(a->name, sizeof(a->name), "%s-%04zu", d->name, i);
		a->priority = d->priority;
		a->reservation = d->reservation;
		a->limit = d->limit;
		s->sc[i].cls = cls;
		s->sc[i].base = d->base / 2 + rng_below(&s->rng, d->base);
		s->sc[i].walk = 0;
		for (int k = 0; k < HOMES; k++) {
			unsigned h;
			int dup;
			do {
				h = (unsigned)rng_below(&s->rng, s->nsrv);
				dup = 0;
				for (int j = 0; j < k; j++)
					dup |= s->sc[i].home[j] == h;
			} while (dup && s->nsrv >= HOMES);
			s->sc[i].home[k] = h;
		}
		mean += s->sc[i].base;
	}
	/* Mean demand fills the cluster to 85%: the cycle's peaks pass 90%,
	 * its troughs fall well below. Whole extents per server. */
	s->srv_cap = extent_down(mean / 85 * 100 / s->nsrv) + ARB_EXTENT;
	s->cl = (struct arb_cluster){ .capacity = s->srv_cap * s->nsrv };
	return 0;
}

static void sim_free(struct sim *s)
{
	free(s->ac);
	free(s->sc);
	free(s->victims);
	free(s->scratch);
	free(s->srv_used);
	free(s->fill);
	lat_free(&s->lat);
}

static double share(const uint64_t *v, int k)
{
	uint64_t sum = 0;
	for (int i = 0; i < NCLASS; i++)
		sum += v[i];
	return sum ? 100.0 * (double)v[k] / (double)sum : 0;
}

static double per_decision(const struct sim *s, double v)
{
	return s->decisions ? v / s->decisions : 0;
}

static void print_table(FILE *out, struct sim *s, double p50, double p99)
{
	unsigned nclass[NCLASS] = { 0 };
	for (size_t i = 0; i < s->n; i++)
		nclass[s->sc[i].cls]++;
	fprintf(out, "arbiter simulation: %zu clients, %zu servers, %u steps, seed %llu\n", s->n,
		s->nsrv, s->steps, (unsigned long long)s->seed);
	fprintf(out, "capacity %.1f GiB (%.1f GiB per server), watermarks %u%% / %u%%\n",
		(double)s->cl.capacity / GiB, (double)s->srv_cap / GiB, ARB_HIGH_PCT, ARB_LOW_PCT);
	fprintf(out, "cluster usage: mean %.1f%%, peak %.1f%%; at/above high watermark %u steps\n",
		s->sum_pct / s->steps, s->peak_pct, s->steps_over);
	fprintf(out, "decisions %u, victims %llu (%.1f per decision), short plans %u (%.1f GiB short)\n",
		s->decisions, (unsigned long long)s->nvictims, per_decision(s, (double)s->nvictims),
		s->short_plans, (double)s->shortfall / GiB);
	fprintf(out, "arb_plan time: median %.0f ns, p99 %.0f ns\n", p50, p99);
	fprintf(out, "admission: %llu admitted, refused %llu over limit (EDQUOT), "
		"%llu at watermark/capacity (ENOSPC), %llu home servers full\n",
		(unsigned long long)s->admitted, (unsigned long long)s->refused_quota,
		(unsigned long long)s->refused_space, (unsigned long long)s->refused_server);
	fprintf(out, "server fill at decisions (mean over decisions): min %.1f%%, median %.1f%%, "
		"max %.1f%% (highest seen %.1f%%)\n", per_decision(s, s->fill_min),
		per_decision(s, s->fill_med), per_decision(s, s->fill_max), s->fill_top);
	fprintf(out, "\n%-10s %8s %8s %14s %14s %12s\n", "class", "priority", "clients",
		"excess share", "reclaim share", "reclaimed");
	for (int k = 0; k < NCLASS; k++)
		fprintf(out, "%-10s %8d %8u %13.1f%% %13.1f%% %8.1f GiB\n", classes[k].name,
			classes[k].priority, nclass[k], share(s->excess, k), share(s->reclaimed, k),
			(double)s->reclaimed[k] / GiB);
	fprintf(out, "\nreservations broken: %llu (must be 0)\n"
		"priority -1000 clients chosen: %llu (must be 0)\n",
		(unsigned long long)s->broken_reservations, (unsigned long long)s->protected_chosen);
}

static void print_json(FILE *out, struct sim *s, double p50, double p99)
{
	fprintf(out, "{\"clients\":%zu,\"servers\":%zu,\"steps\":%u,\"seed\":%llu,"
		"\"capacity_bytes\":%llu,\"high_pct\":%u,\"low_pct\":%u,"
		"\"usage_mean_pct\":%.2f,\"usage_peak_pct\":%.2f,\"steps_over_high\":%u,"
		"\"decisions\":%u,\"victims\":%llu,\"short_plans\":%u,\"shortfall_bytes\":%llu,"
		"\"plan_ns_p50\":%.0f,\"plan_ns_p99\":%.0f,"
		"\"admitted\":%llu,\"refused_edquot\":%llu,\"refused_enospc\":%llu,"
		"\"refused_server_full\":%llu,"
		"\"server_fill_pct\":{\"min\":%.2f,\"median\":%.2f,\"max\":%.2f,\"highest\":%.2f},"
		"\"classes\":[",
		s->n, s->nsrv, s->steps, (unsigned long long)s->seed,
		(unsigned long long)s->cl.capacity, ARB_HIGH_PCT, ARB_LOW_PCT, s->sum_pct / s->steps,
		s->peak_pct, s->steps_over, s->decisions, (unsigned long long)s->nvictims,
		s->short_plans, (unsigned long long)s->shortfall, p50, p99,
		(unsigned long long)s->admitted, (unsigned long long)s->refused_quota,
		(unsigned long long)s->refused_space, (unsigned long long)s->refused_server,
		per_decision(s, s->fill_min), per_decision(s, s->fill_med),
		per_decision(s, s->fill_max), s->fill_top);
	for (int k = 0; k < NCLASS; k++)
		fprintf(out, "%s{\"class\":\"%s\",\"priority\":%d,\"excess_share_pct\":%.2f,"
			"\"reclaim_share_pct\":%.2f,\"reclaimed_bytes\":%llu}", k ? "," : "",
			classes[k].name, classes[k].priority, share(s->excess, k),
			share(s->reclaimed, k), (unsigned long long)s->reclaimed[k]);
	fprintf(out, "],\"reservations_broken\":%llu,\"protected_chosen\":%llu}\n",
		(unsigned long long)s->broken_reservations, (unsigned long long)s->protected_chosen);
}

/* A number in [min_one ? 1 : 0, max]. */
static int number(const char *text, int min_one, unsigned long long max,
		  unsigned long long *out)
{
	char *end;
	errno = 0;
	*out = strtoull(text, &end, 0);
	return errno || *end || !*text || *text == '-' || (min_one && !*out) || *out > max ?
		       -EINVAL : 0;
}

int bench_arbiter_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "clients", required_argument, NULL, 'c' },
		{ "servers", required_argument, NULL, 'v' },
		{ "steps", required_argument, NULL, 't' },
		{ "seed", required_argument, NULL, 's' },
		{ "json", no_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 },
	};
	struct sim s = { .n = 1000, .nsrv = 100, .steps = 2000, .seed = 1 };
	unsigned long long v;
	int json = 0, opt;
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (opt == 'j') {
			json = 1;
			continue;
		}
		if (opt == 's' && !number(optarg, 0, ~0ULL, &v)) {
			s.seed = v;
			continue;
		}
		if (optarg && opt != 's' && !number(optarg, 1, 1000000, &v)) {
			if (opt == 'c')
				s.n = v;
			else if (opt == 'v')
				s.nsrv = v;
			else
				s.steps = (unsigned)v;
			continue;
		}
		fprintf(stderr, "usage: spillway-bench arbiter [--clients N] [--servers N] "
			"[--steps N] [--seed S] [--json]\n");
		return 2;
	}
	if (json)
		bench_info = stderr;
	int rc = sim_init(&s);
	if (rc) {
		fprintf(stderr, "spillway-bench: arbiter: %s\n", strerror(-rc));
		sim_free(&s);
		return 1;
	}
	run(&s);
	/* -1: no decision was taken. */
	double p50 = s.lat.n ? lat_percentile_us(&s.lat, 50) * 1000 : -1;
	double p99 = s.lat.n ? lat_percentile_us(&s.lat, 99) * 1000 : -1;
	print_table(bench_info, &s, p50, p99);
	if (json)
		print_json(stdout, &s, p50, p99);
	rc = s.broken_reservations || s.protected_chosen ? 1 : 0;
	sim_free(&s);
	return rc;
}
