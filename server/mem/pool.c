/* SPDX-License-Identifier: MIT */
#include "pool.h"

#include <errno.h>
#include <numa.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "buddy.h"

#define HUGE_2M (2u << 20)

int pool_parse_nodes(const char *spec, int *nodes, int max)
{
	int have_numa = numa_available() >= 0;
	int max_node = have_numa ? numa_max_node() : 0;
	int n = 0;
	if (!strcmp(spec, "all")) {
		for (int i = 0; i <= max_node && n < max; i++) {
			if (have_numa && !numa_bitmask_isbitset(numa_all_nodes_ptr, (unsigned)i))
				continue;
			if (have_numa && numa_node_size64(i, NULL) <= 0)
				continue; /* memory-less node */
			nodes[n++] = i;
		}
		return n ? n : -EINVAL;
	}
	const char *p = spec;
	while (*p) {
		char *end;
		long a = strtol(p, &end, 10), b = a;
		if (end == p)
			return -EINVAL;
		if (*end == '-') {
			p = end + 1;
			b = strtol(p, &end, 10);
			if (end == p || b < a)
				return -EINVAL;
		}
		for (long i = a; i <= b; i++) {
			if (i < 0 || i > max_node || n >= max)
				return -EINVAL;
			if (have_numa && !numa_bitmask_isbitset(numa_all_nodes_ptr, (unsigned)i))
				return -EINVAL;
			nodes[n++] = (int)i;
		}
		if (*end == ',')
			end++;
		else if (*end)
			return -EINVAL;
		p = end;
	}
	return n ? n : -EINVAL;
}

struct prefault_job {
	struct pool *pool;
	int have_numa;
};

/* Runs on the pool's node so that first touch allocates there too. */
static void *prefault(void *arg)
{
	struct prefault_job *j = arg;
	if (j->have_numa)
		numa_run_on_node(j->pool->node);
	for (uint64_t off = 0; off < j->pool->bytes; off += 4096)
		j->pool->base[off] = 0;
	return NULL;
}

static int map_pool(struct pool *p, const struct pool_options *o, int have_numa,
		    char *err, size_t cap)
{
	void *m = MAP_FAILED;
	if (o->hugetlb && p->bytes % HUGE_2M == 0) {
		m = mmap(NULL, p->bytes, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
		p->on_hugetlb = m != MAP_FAILED;
	}
	if (m == MAP_FAILED) {
		m = mmap(NULL, p->bytes, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (m == MAP_FAILED) {
			int e = errno;
			snprintf(err, cap, "mmap %llu bytes for node %d: %s",
				 (unsigned long long)p->bytes, p->node, strerror(e));
			return -e;
		}
		madvise(m, p->bytes, MADV_HUGEPAGE); /* best effort: THP */
	}
	p->base = m;
	if (have_numa)
		numa_tonode_memory(p->base, p->bytes, p->node);
	if (o->mlock && mlock(p->base, p->bytes)) {
		int e = errno;
		snprintf(err, cap, "mlock %llu bytes on node %d: %s (raise RLIMIT_MEMLOCK or drop --mlock)",
			 (unsigned long long)p->bytes, p->node, strerror(e));
		return -e;
	}
	return 0;
}

int pool_set_create(const struct pool_options *o, struct pool_set **out,
		    char *err, size_t cap)
{
	int nodes[256];
	int have_numa = numa_available() >= 0;
	int n = pool_parse_nodes(o->nodes ? o->nodes : "all", nodes, 256);
	if (n < 0) {
		snprintf(err, cap, "bad NUMA node list '%s'", o->nodes);
		return -EINVAL;
	}
	uint64_t unit = o->unit ? o->unit : HUGE_2M;
	uint64_t share = o->capacity / (uint64_t)n / unit * unit;
	if (share == 0) {
		snprintf(err, cap, "capacity %llu is less than one %llu-byte extent per node",
			 (unsigned long long)o->capacity, (unsigned long long)unit);
		return -EINVAL;
	}
	struct pool_set *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->pools = calloc((size_t)n, sizeof(*s->pools));
	if (!s->pools) {
		free(s);
		return -ENOMEM;
	}
	int rc = 0;
	for (int i = 0; i < n; i++) {
		struct pool *p = &s->pools[i];
		p->node = nodes[i];
		p->bytes = share;
		p->lock = malloc(sizeof(pthread_mutex_t));
		p->buddy = buddy_create(share / BUDDY_FRAME_SIZE);
		s->npools++;
		if (!p->lock || !p->buddy) {
			rc = -ENOMEM;
			snprintf(err, cap, "out of memory for pool metadata");
			goto fail;
		}
		pthread_mutex_init(p->lock, NULL);
		rc = map_pool(p, o, have_numa, err, cap);
		if (rc)
			goto fail;
		s->capacity += share;
	}
	/* Pre-fault every pool at once, each from its own node. */
	pthread_t *th = calloc((size_t)n, sizeof(*th));
	struct prefault_job *jobs = calloc((size_t)n, sizeof(*jobs));
	char *started = calloc((size_t)n, 1);
	if (!th || !jobs || !started) {
		free(th);
		free(jobs);
		free(started);
		rc = -ENOMEM;
		goto fail;
	}
	for (int i = 0; i < n; i++) {
		jobs[i] = (struct prefault_job){ &s->pools[i], have_numa };
		started[i] = pthread_create(&th[i], NULL, prefault, &jobs[i]) == 0;
		if (!started[i])
			prefault(&jobs[i]); /* no thread: do it here, off-node */
	}
	for (int i = 0; i < n; i++)
		if (started[i])
			pthread_join(th[i], NULL);
	free(th);
	free(jobs);
	free(started);
	*out = s;
	return 0;
fail:
	pool_set_destroy(s);
	return rc;
}

void pool_set_destroy(struct pool_set *s)
{
	if (!s)
		return;
	for (int i = 0; i < s->npools; i++) {
		struct pool *p = &s->pools[i];
		if (p->base)
			munmap(p->base, p->bytes);
		buddy_destroy(p->buddy);
		if (p->lock)
			pthread_mutex_destroy(p->lock);
		free(p->lock);
	}
	free(s->pools);
	free(s);
}

static int alloc_from(struct pool_set *s, int i, unsigned order, struct pool_block *out)
{
	struct pool *p = &s->pools[i];
	uint64_t frame;
	pthread_mutex_lock(p->lock);
	int rc = buddy_alloc(p->buddy, order, &frame);
	pthread_mutex_unlock(p->lock);
	if (rc)
		return rc;
	atomic_fetch_add(&p->used, (uint64_t)BUDDY_FRAME_SIZE << order);
	*out = (struct pool_block){ .pool = i, .frame = frame, .order = order,
				    .mem = p->base + frame * BUDDY_FRAME_SIZE };
	return 0;
}

int pool_alloc(struct pool_set *s, int pref_node, unsigned order, struct pool_block *out)
{
	int first = -1;
	if (pref_node >= 0)
		for (int i = 0; i < s->npools; i++)
			if (s->pools[i].node == pref_node)
				first = i;
	if (first < 0) {
		uint64_t best = 0;
		for (int i = 0; i < s->npools; i++) {
			uint64_t free_b = s->pools[i].bytes - atomic_load(&s->pools[i].used);
			if (first < 0 || free_b > best) {
				first = i;
				best = free_b;
			}
		}
	}
	if (alloc_from(s, first, order, out) == 0)
		return 0;
	for (int i = 0; i < s->npools; i++)
		if (i != first && alloc_from(s, i, order, out) == 0)
			return 0;
	return -ENOSPC;
}

void pool_free(struct pool_set *s, const struct pool_block *b)
{
	struct pool *p = &s->pools[b->pool];
	pthread_mutex_lock(p->lock);
	int rc = buddy_free(p->buddy, b->frame);
	pthread_mutex_unlock(p->lock);
	if (rc == 0)
		atomic_fetch_sub(&p->used, (uint64_t)BUDDY_FRAME_SIZE << b->order);
}
