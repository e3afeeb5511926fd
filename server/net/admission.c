/* SPDX-License-Identifier: MIT */
#include "admission.h"

#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "metrics.h"
#include "options.h"
#include "wire.h"

#define LOG_INTERVAL_MS 10000 /* peer-triggered lines: one per kind per interval */
#define MAX_REPLY ((uint64_t)SPILL_WIRE_HDR_SIZE + SPILL_MAX_PAYLOAD)

/* One peer address with live connections. */
struct peer {
	struct peer *next;  /* bucket chain, or the free list */
	uint8_t addr[16];
	uint8_t family;
	unsigned conns;
	unsigned unauth;              /* of conns, not yet authenticated */
};

static struct {
	pthread_mutex_t lock;         /* guards the table and the counts below */
	struct peer **buckets;
	size_t nbuckets;              /* a power of two */
	struct peer *nodes, *free;    /* max_conns entries, allocated once */
	uint64_t seed;                /* keyed hash: chains an attacker cannot aim */
	unsigned conns, unauth;
	unsigned max_conns, max_per_peer, max_unauth, max_unauth_per_peer;
	unsigned backoff_ms;
	uint64_t output_max, output_threshold;
	atomic_int_fast64_t output_bytes;
	uint64_t frame_buffer_max, frame_buffer_share;
	atomic_uint_fast64_t frame_buffer_bytes, frame_buffer_waits, frame_buffer_share_waits;
	atomic_uint_fast64_t frame_buffer_sessions; /* the share of connections without an identity */
	atomic_uint_fast64_t refused[ADM_REFUSED_COUNT];
	atomic_uint_fast64_t timeouts[ADM_TIMEOUT_COUNT];
	atomic_uint_fast64_t backoffs;
	atomic_uint_fast64_t output_waits;
	atomic_uint_fast64_t refuse_log_ms, refuse_log_skipped;
	atomic_uint_fast64_t accept_log_ms, accept_log_skipped;
} A = { .lock = PTHREAD_MUTEX_INITIALIZER };

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int admission_init(const struct server_options *o)
{
	A.max_conns = o->max_conns;
	A.max_per_peer = o->max_conns_per_peer;
	A.max_unauth = o->max_unauth;
	A.max_unauth_per_peer = o->max_unauth_per_peer;
	A.backoff_ms = o->accept_backoff_ms;
	A.output_max = o->output_max;
	A.frame_buffer_max = o->frame_buffer_max;
	/* Never below one largest frame, or a client could never send one. */
	A.frame_buffer_share = o->frame_buffer_per_client ? o->frame_buffer_per_client
							   : o->frame_buffer_max / 4;
	if (A.frame_buffer_share < SPILL_MAX_PAYLOAD)
		A.frame_buffer_share = SPILL_MAX_PAYLOAD;
	/* Every worker may queue one more reply after it saw room: keep that
	 * much headroom, but never so much that nothing may be queued. */
	long workers = o->workers > 0 ? o->workers : sysconf(_SC_NPROCESSORS_ONLN);
	uint64_t headroom = (uint64_t)(workers > 0 ? workers : 1) * MAX_REPLY;
	A.output_threshold = A.output_max > 4 * headroom ? A.output_max - headroom
							  : A.output_max * 3 / 4;
	A.nbuckets = 16;
	while (A.nbuckets < 2 * (size_t)A.max_conns)
		A.nbuckets *= 2;
	A.buckets = calloc(A.nbuckets, sizeof(*A.buckets));
	A.nodes = calloc(A.max_conns, sizeof(*A.nodes));
	if (!A.buckets || !A.nodes) {
		admission_destroy();
		return -ENOMEM;
	}
	for (unsigned i = 0; i < A.max_conns; i++) {
		A.nodes[i].next = A.free;
		A.free = &A.nodes[i];
	}
	struct rlimit rl;
	if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur != RLIM_INFINITY &&
	    rl.rlim_cur < (rlim_t)A.max_conns + 64)
		log_warn("RLIMIT_NOFILE is %llu, below --max-connections %u + 64: descriptors will run "
			 "out first (raise it with ulimit -n or LimitNOFILE=)",
			 (unsigned long long)rl.rlim_cur, A.max_conns);
	if (getrandom(&A.seed, sizeof(A.seed), 0) != sizeof(A.seed))
		A.seed = (uint64_t)now_ms() * 0x9e3779b97f4a7c15ull;
	return 0;
}

void admission_destroy(void)
{
	free(A.buckets);
	free(A.nodes);
	A.buckets = NULL;
	A.nodes = A.free = NULL;
	A.nbuckets = 0;
}

/* The address alone, IPv4-mapped IPv6 as IPv4, other IPv6 addresses by
 * their /64: one host commonly holds a whole /64 and may pick any address
 * in it, so counting each address apart would make the per-peer caps
 * meaningless for IPv6. 0, or -EAFNOSUPPORT. */
static int key_of(const struct sockaddr *sa, struct admission_ticket *t)
{
	memset(t, 0, sizeof(*t));
	if (sa && sa->sa_family == AF_INET) {
		memcpy(t->addr, &((const struct sockaddr_in *)sa)->sin_addr, 4);
		t->family = AF_INET;
		return 0;
	}
	if (sa && sa->sa_family == AF_INET6) {
		const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
		if (IN6_IS_ADDR_V4MAPPED(a)) {
			memcpy(t->addr, &a->s6_addr[12], 4);
			t->family = AF_INET;
		} else {
			memcpy(t->addr, a, 8);
			t->family = AF_INET6;
		}
		return 0;
	}
	return -EAFNOSUPPORT;
}

static size_t bucket_of(const struct admission_ticket *t)
{
	uint64_t h = A.seed ^ t->family;
	for (int i = 0; i < 16; i++) {
		h ^= t->addr[i];
		h *= 0x100000001b3ull;
		h ^= h >> 29;
	}
	return (size_t)(h & (A.nbuckets - 1));
}

/* The entry for t's address, or NULL. Called with the lock held. */
static struct peer **find_locked(const struct admission_ticket *t)
{
	struct peer **pp = &A.buckets[bucket_of(t)];
	while (*pp && ((*pp)->family != t->family || memcmp((*pp)->addr, t->addr, 16)))
		pp = &(*pp)->next;
	return pp;
}

static const char *const refusal_words[ADM_REFUSED_COUNT] = {
	"too many connections (--max-connections)",
	"too many connections from this address (--max-connections-per-peer)",
	"too many connections not yet authenticated (--max-unauthenticated)",
	("too many connections not yet authenticated from this address "
	 "(--max-unauthenticated-per-peer)"),
};

static int refuse(struct admission_ticket *t, enum admission_refusal r, const char **why)
{
	memset(t, 0, sizeof(*t));
	metrics_inc(&A.refused[r], 1);
	*why = refusal_words[r];
	uint64_t skipped;
	if (admission_log_ok(&A.refuse_log_ms, &A.refuse_log_skipped, &skipped))
		log_warn("refusing connections: %s (%llu more refused since the last such line; "
			 "see spillway_connections_refused_total)",
			 *why, (unsigned long long)skipped);
	static const int codes[ADM_REFUSED_COUNT] = { -EMFILE, -EUSERS, -EAGAIN, -EAGAIN };
	return codes[r];
}

/* Admit the peer keyed by k; network peers (global) meet the global caps too. */
static int enter_key(const struct admission_ticket *k, int global, struct admission_ticket *t,
		     const char **why)
{
	pthread_mutex_lock(&A.lock);
	enum admission_refusal r = ADM_REFUSED_COUNT;
	struct peer **pp = find_locked(k);
	if (!A.free || (global && A.conns >= A.max_conns))
		r = ADM_REFUSED_TOTAL;
	else if (*pp && (*pp)->conns >= A.max_per_peer)
		r = ADM_REFUSED_PER_PEER;
	else if (global && A.unauth >= A.max_unauth)
		r = ADM_REFUSED_UNAUTH;
	else if (*pp && (*pp)->unauth >= A.max_unauth_per_peer)
		r = ADM_REFUSED_UNAUTH_PER_PEER;
	if (r != ADM_REFUSED_COUNT) {
		pthread_mutex_unlock(&A.lock);
		return refuse(t, r, why);
	}
	if (!*pp) {
		struct peer *p = A.free;
		A.free = p->next;
		memcpy(p->addr, k->addr, 16);
		p->family = k->family;
		p->conns = 0;
		p->unauth = 0;
		p->next = NULL;
		*pp = p;
	}
	(*pp)->conns++;
	(*pp)->unauth++;
	A.conns++;
	A.unauth++;
	pthread_mutex_unlock(&A.lock);
	*t = *k;
	t->admitted = 1;
	t->unauth = 1;
	return 0;
}

int admission_enter(const struct sockaddr *sa, struct admission_ticket *t, const char **why)
{
	struct admission_ticket k;
	if (key_of(sa, &k)) {
		/* Not an IP peer (cannot happen on these listeners): one bucket. */
		memset(&k, 0, sizeof(k));
		k.family = AF_UNSPEC;
	}
	return enter_key(&k, 1, t, why);
}

int admission_enter_local(uid_t uid, struct admission_ticket *t, const char **why)
{
	struct admission_ticket k;
	memset(&k, 0, sizeof(k));
	k.family = AF_UNIX;
	memcpy(k.addr, &uid, sizeof(uid));
	return enter_key(&k, 0, t, why);
}

void admission_authenticated(struct admission_ticket *t)
{
	if (!t->admitted || !t->unauth)
		return;
	pthread_mutex_lock(&A.lock);
	struct peer *p = *find_locked(t);
	if (p)
		p->unauth--;
	A.unauth--;
	pthread_mutex_unlock(&A.lock);
	t->unauth = 0;
}

void admission_leave(struct admission_ticket *t)
{
	if (!t->admitted)
		return;
	pthread_mutex_lock(&A.lock);
	struct peer **pp = find_locked(t);
	struct peer *p = *pp;
	if (p && t->unauth)
		p->unauth--;
	if (p && --p->conns == 0) {
		*pp = p->next;
		p->next = A.free;
		A.free = p;
	}
	A.conns--;
	if (t->unauth)
		A.unauth--;
	pthread_mutex_unlock(&A.lock);
	memset(t, 0, sizeof(*t));
}

unsigned admission_accept_failed(const char *listener, int err)
{
	if (err != EMFILE && err != ENFILE && err != ENOBUFS && err != ENOMEM)
		return 0;
	metrics_inc(&A.backoffs, 1);
	uint64_t skipped;
	if (admission_log_ok(&A.accept_log_ms, &A.accept_log_skipped, &skipped))
		log_warn("%s: accept: %s; not accepting for %u ms at a time "
			 "(%llu more pauses since the last such line)",
			 listener, strerror(err), A.backoff_ms, (unsigned long long)skipped);
	return A.backoff_ms;
}

void admission_count_timeout(enum admission_timeout kind)
{
	metrics_inc(&A.timeouts[kind], 1);
}

void admission_count_output_wait(void)
{
	metrics_inc(&A.output_waits, 1);
}

void admission_output_add(int64_t delta)
{
	atomic_fetch_add_explicit(&A.output_bytes, delta, memory_order_relaxed);
}

int admission_output_room(void)
{
	int64_t v = atomic_load_explicit(&A.output_bytes, memory_order_relaxed);
	return v < 0 || (uint64_t)v < A.output_threshold;
}

/* Add bytes to *v unless that passes max. */
static int take_below(atomic_uint_fast64_t *v, uint64_t bytes, uint64_t max)
{
	uint64_t cur = atomic_load_explicit(v, memory_order_relaxed);
	do {
		if (cur + bytes > max)
			return 0;
	} while (!atomic_compare_exchange_weak_explicit(v, &cur, cur + bytes, memory_order_relaxed,
							memory_order_relaxed));
	return 1;
}

int admission_frame_buffer_take(atomic_uint_fast64_t *share, uint64_t bytes, int *by_share)
{
	if (!share)
		share = &A.frame_buffer_sessions;
	/* The share binds only once half the budget is in use: until then an
	 * identity may take more (a client whose old connections still hold
	 * frames a partition cut short keeps writing on its new ones). */
	uint64_t in_use = atomic_load_explicit(&A.frame_buffer_bytes, memory_order_relaxed);
	uint64_t cap = in_use + bytes <= A.frame_buffer_max / 2 ? A.frame_buffer_max
							      : A.frame_buffer_share;
	*by_share = !take_below(share, bytes, cap);
	if (*by_share)
		return 0;
	if (take_below(&A.frame_buffer_bytes, bytes, A.frame_buffer_max))
		return 1;
	atomic_fetch_sub_explicit(share, bytes, memory_order_relaxed);
	return 0;
}

void admission_frame_buffer_give(atomic_uint_fast64_t *share, uint64_t bytes)
{
	atomic_fetch_sub_explicit(share ? share : &A.frame_buffer_sessions, bytes,
				  memory_order_relaxed);
	atomic_fetch_sub_explicit(&A.frame_buffer_bytes, bytes, memory_order_relaxed);
}

void admission_count_frame_buffer_wait(int by_share)
{
	metrics_inc(by_share ? &A.frame_buffer_share_waits : &A.frame_buffer_waits, 1);
}

int admission_log_ok(atomic_uint_fast64_t *last_ms, atomic_uint_fast64_t *skipped,
		     uint64_t *suppressed)
{
	uint64_t now = now_ms() + LOG_INTERVAL_MS; /* so that 0 means "never" */
	uint64_t last = atomic_load(last_ms);
	if ((last && now - last < LOG_INTERVAL_MS) ||
	    !atomic_compare_exchange_strong(last_ms, &last, now)) {
		atomic_fetch_add(skipped, 1);
		return 0;
	}
	*suppressed = atomic_exchange(skipped, 0);
	return 1;
}

static uint64_t read_locked(const unsigned *v)
{
	pthread_mutex_lock(&A.lock);
	uint64_t x = *v;
	pthread_mutex_unlock(&A.lock);
	return x;
}
static uint64_t gauge_conns(void *arg) { (void)arg; return read_locked(&A.conns); }
static uint64_t gauge_unauth(void *arg) { (void)arg; return read_locked(&A.unauth); }
static uint64_t gauge_frame_buffers(void *arg)
{
	(void)arg;
	return atomic_load(&A.frame_buffer_bytes);
}
static uint64_t gauge_output(void *arg)
{
	(void)arg;
	int64_t v = atomic_load(&A.output_bytes);
	return v > 0 ? (uint64_t)v : 0;
}

int admission_register_metrics(struct metrics *m)
{
	static const char *const refusal_labels[ADM_REFUSED_COUNT] = {
		"reason=\"total\"", "reason=\"per_peer\"", "reason=\"unauthenticated\"",
		"reason=\"unauthenticated_per_peer\"",
	};
	static const char *const timeout_labels[ADM_TIMEOUT_COUNT] = {
		"kind=\"handshake\"", "kind=\"idle\"", "kind=\"write_stall\"",
		"kind=\"frame_stall\"",
	};
	int rc = 0;
	rc |= metrics_add_gauge(m, "spillway_connections_admitted", "",
				"Connections admitted now, every listener (NBD too)", gauge_conns, NULL);
	rc |= metrics_add_gauge(m, "spillway_connections_unauthenticated", "",
				"Admitted connections that have not authenticated yet", gauge_unauth,
				NULL);
	rc |= metrics_add_gauge(m, "spillway_output_queued_bytes", "",
				"Reply bytes queued (copied) for all connections", gauge_output, NULL);
	for (int i = 0; i < ADM_REFUSED_COUNT; i++)
		rc |= metrics_add_counter(m, "spillway_connections_refused_total", refusal_labels[i],
					  "Connections closed at accept, by the cap that was full",
					  &A.refused[i]);
	for (int i = 0; i < ADM_TIMEOUT_COUNT; i++)
		rc |= metrics_add_counter(m, "spillway_connection_timeouts_total", timeout_labels[i],
					  "Connections closed by a timeout, by kind", &A.timeouts[i]);
	rc |= metrics_add_counter(m, "spillway_accept_backoffs_total", "",
				  "Pauses of a listener after accept ran out of descriptors or memory",
				  &A.backoffs);
	rc |= metrics_add_counter(m, "spillway_output_waits_total", "",
				  "Times a connection stopped taking requests: all queued output near "
				  "--output-max", &A.output_waits);
	rc |= metrics_add_gauge(m, "spillway_frame_buffer_bytes", "",
				"Payload buffers larger than the 64 KiB staging buffer, all connections",
				gauge_frame_buffers, NULL);
	rc |= metrics_add_counter(m, "spillway_frame_buffer_share_waits_total", "",
				  "Frames that waited because their identity held its "
				  "--frame-buffer-per-client share", &A.frame_buffer_share_waits);
	rc |= metrics_add_counter(m, "spillway_frame_buffer_waits_total", "",
				  "Times a connection stopped reading: its next frame's buffer would "
				  "exceed --frame-buffer-max", &A.frame_buffer_waits);
	return rc ? -ENOMEM : 0;
}
