/* SPDX-License-Identifier: MIT */
/*
 * spill-workload: fill anonymous memory with pages whose every byte is
 * known, then read them back and check each one, so that a swap device
 * that loses, misplaces, zeroes or mixes a page is caught.
 *
 *   spill-workload --size SIZE [--passes N] [--random] [--order r,s,...]
 *                  [--rewrite] [--seed N] [--thp] [--mark P] [--wait W]
 *                  [--hold] [--wait-ms N] [--pageout] [--quiet]
 *
 * Page i of version v holds a xorshift stream seeded from (seed, i, v); its
 * first word names i and v, its last word is a checksum of the rest. The
 * fill writes version 0. Each pass then checks every page (in order, or in
 * a random permutation with --random; --order r,s gives each pass its own:
 * r random, s in order) and, with --rewrite, writes the next version, so
 * reading and swapping out go on together.
 *
 * --mark P creates the file P0 once the fill is done and Pn after pass n;
 * --wait W makes pass n wait for the file Wn first (at most --wait-ms,
 * default 120000): a test acts between phases (kills a server, swapoff)
 * without guessing at times; with --hold it also waits for W<N+1> after
 * the last pass N before exiting (and freeing its memory).
 *
 * --pageout (with --rewrite) changes pages while they are being written to
 * swap: during each pass a second thread keeps asking for the 64 pages the
 * pass is about to rewrite to be swapped out at once (MADV_PAGEOUT starts
 * the write-out and returns); the pass waits for one sweep over them before
 * it rewrites them, so its stores race the write-out of the same pages.
 *
 * Output: one line per phase with pages/s; a bad page is described (what it
 * holds instead) and the exit status is 1. A page the swap device could not
 * read back raises SIGBUS: the workload names it and exits 4. Exit 2 for
 * usage errors, 3 if a wait expired.
 */
#include <errno.h>
#include <getopt.h>
#include <sched.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096u
#define WORDS (PAGE / 8)
#define PAGEOUT_RUN 64 /* pages per MADV_PAGEOUT with --pageout */

#ifndef MADV_PAGEOUT
#define MADV_PAGEOUT 21
#endif

static uint64_t seed = 1;

static uint64_t mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static uint64_t checksum(const uint64_t *w)
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (unsigned i = 0; i < WORDS - 1; i++)
		h = (h ^ w[i]) * 0x100000001b3ull;
	return h;
}

static void fill_page(uint64_t *w, uint64_t index, uint32_t version)
{
	uint64_t s = mix(seed ^ mix(index * 0x10001 + version)) | 1;
	w[0] = index << 24 | version;
	for (unsigned i = 1; i < WORDS - 1; i++) {
		s ^= s << 13;
		s ^= s >> 7;
		s ^= s << 17;
		w[i] = s;
	}
	w[WORDS - 1] = checksum(w);
}

/* 0 if page index holds version; else describe what it holds. */
static int check_page(const uint64_t *w, uint64_t index, uint32_t version)
{
	static uint64_t want[WORDS];
	fill_page(want, index, version);
	if (!memcmp(w, want, PAGE))
		return 0;
	int zero = 1;
	for (unsigned i = 0; i < WORDS && zero; i++)
		zero = w[i] == 0;
	if (zero)
		fprintf(stderr, "spill-workload: page %" PRIu64 " v%u reads as zeros\n", index, version);
	else if (checksum(w) == w[WORDS - 1])
		fprintf(stderr, "spill-workload: page %" PRIu64 " v%u holds page %" PRIu64 " v%u\n",
			index, version, w[0] >> 24, (unsigned)(w[0] & 0xffffff));
	else
		fprintf(stderr, "spill-workload: page %" PRIu64 " v%u is corrupt (bad checksum)\n",
			index, version);
	return 1;
}

static uint8_t *area;

/* A swap-in that failed: say which page, with async-signal-safe calls only. */
static void on_sigbus(int sig, siginfo_t *si, void *ctx)
{
	char msg[96], num[24];
	size_t n = 0, k = 0;
	uint64_t page = (uint64_t)((uint8_t *)si->si_addr - area) / PAGE;
	const char *head = "spill-workload: SIGBUS reading page ";
	const char *tail = " (the swap device failed the read)\n";

	(void)sig;
	(void)ctx;
	do
		num[k++] = (char)('0' + page % 10);
	while ((page /= 10) && k < sizeof(num));
	for (const char *p = head; *p; p++)
		msg[n++] = *p;
	while (k)
		msg[n++] = num[--k];
	for (const char *p = tail; *p && n < sizeof(msg); p++)
		msg[n++] = *p;
	if (write(2, msg, n) < 0) {
		/* nothing more to do */
	}
	_exit(4);
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/*
 * --pageout: a second thread swaps out, one by one, the run of pages the
 * main thread is about to rewrite (MADV_PAGEOUT starts a page's write-out
 * and returns), over and over, so the owner's stores land on pages while
 * they are under writeback. It only asks for write-outs; what the pages
 * hold is the main thread's business alone.
 */
struct pageout_ctx {
	uint8_t *mem;
	const uint32_t *order;          /* this pass's order, or NULL: in order */
	uint64_t npages;
	uint64_t cursor;                /* the run the main thread is at */
	uint64_t sweeps;                /* runs swept since the thread began */
	int stop;
	uint64_t calls;
};

static void *pageout_thread(void *arg)
{
	struct pageout_ctx *p = arg;

	while (!__atomic_load_n(&p->stop, __ATOMIC_ACQUIRE)) {
		uint64_t k0 = __atomic_load_n(&p->cursor, __ATOMIC_ACQUIRE);
		for (uint64_t k = k0; k < k0 + PAGEOUT_RUN && k < p->npages; k++) {
			uint64_t i = p->order ? p->order[k] : k;
			madvise(p->mem + i * PAGE, PAGE, MADV_PAGEOUT);
			p->calls++;
		}
		__atomic_add_fetch(&p->sweeps, 1, __ATOMIC_RELEASE);
	}
	return NULL;
}

/*
 * The main thread at the start of a run: point the thread at it and wait
 * until it has swept the run once from start to end (two sweeps counted:
 * the one under way may have begun at the old run), so the run's pages are
 * swapped out or under writeback as the main thread rewrites them, while
 * the thread's next sweep writes them out again.
 */
static void pageout_wait(struct pageout_ctx *p, uint64_t k)
{
	__atomic_store_n(&p->cursor, k, __ATOMIC_RELEASE);
	uint64_t s = __atomic_load_n(&p->sweeps, __ATOMIC_ACQUIRE);
	while (__atomic_load_n(&p->sweeps, __ATOMIC_ACQUIRE) < s + 2)
		sched_yield();
}

static int parse_size(const char *s, uint64_t *out)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s)
		return -1;
	switch (*end) {
	case 'G': case 'g': v <<= 30; end++; break;
	case 'M': case 'm': v <<= 20; end++; break;
	case 'K': case 'k': v <<= 10; end++; break;
	}
	if (*end)
		return -1;
	*out = v;
	return 0;
}

static void mark(const char *prefix, unsigned n)
{
	if (!prefix)
		return;
	char path[4096];
	snprintf(path, sizeof(path), "%s%u", prefix, n);
	FILE *f = fopen(path, "w");
	if (f)
		fclose(f);
}

static int wait_for(const char *prefix, unsigned n, long ms)
{
	char path[4096];
	struct stat sb;
	snprintf(path, sizeof(path), "%s%u", prefix, n);
	for (long waited = 0; stat(path, &sb); waited += 10) {
		if (waited >= ms)
			return -1;
		usleep(10000);
	}
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "size", required_argument, NULL, 's' },
		{ "passes", required_argument, NULL, 'p' },
		{ "random", no_argument, NULL, 'r' },
		{ "rewrite", no_argument, NULL, 'w' },
		{ "seed", required_argument, NULL, 'S' },
		{ "thp", no_argument, NULL, 't' },
		{ "mark", required_argument, NULL, 'm' },
		{ "wait", required_argument, NULL, 'W' },
		{ "wait-ms", required_argument, NULL, 'T' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "hold", no_argument, NULL, 'h' },
		{ "order", required_argument, NULL, 'o' },
		{ "pageout", no_argument, NULL, 'P' },
		{ NULL, 0, NULL, 0 },
	};
	uint64_t size = 0;
	unsigned passes = 1;
	int random_order = 0, rewrite = 0, thp = 0, quiet = 0, hold = 0, pageout = 0;
	const char *mark_path = NULL, *wait_path = NULL, *order_spec = NULL;
	long wait_ms = 120000;
	int opt;
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 's': if (parse_size(optarg, &size)) goto usage; break;
		case 'p': passes = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'r': random_order = 1; break;
		case 'w': rewrite = 1; break;
		case 'S': seed = strtoull(optarg, NULL, 0); break;
		case 't': thp = 1; break;
		case 'm': mark_path = optarg; break;
		case 'W': wait_path = optarg; break;
		case 'T': wait_ms = strtol(optarg, NULL, 10); break;
		case 'q': quiet = 1; break;
		case 'h': hold = 1; break;
		case 'o': order_spec = optarg; break;
		case 'P': pageout = 1; break;
		default: goto usage;
		}
	}
	if (!size || optind != argc || (pageout && !rewrite))
		goto usage;
	if (order_spec) {
		passes = 0;
		for (const char *p = order_spec; *p; p++) {
			if (*p == 'r' || *p == 's')
				passes++;
			else if (*p != ',')
				goto usage;
		}
		random_order = strchr(order_spec, 'r') != NULL;
	}

	uint64_t npages = size / PAGE;
	uint8_t *mem = mmap(NULL, npages * PAGE, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint32_t *order = random_order ? malloc(npages * sizeof(*order)) : NULL;
	uint32_t *version = calloc(npages, sizeof(*version));
	if (mem == MAP_FAILED || !version || (random_order && !order)) {
		perror("spill-workload: memory");
		return 1;
	}
	madvise(mem, npages * PAGE, thp ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
	area = mem;
	struct sigaction sa = { .sa_sigaction = on_sigbus, .sa_flags = SA_SIGINFO };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGBUS, &sa, NULL);

	double t0 = now_s();
	for (uint64_t i = 0; i < npages; i++)
		fill_page((uint64_t *)(mem + i * PAGE), i, 0);
	double t1 = now_s();
	if (!quiet)
		printf("fill   %" PRIu64 " pages in %.2f s (%.0f pages/s)\n", npages, t1 - t0,
		       (double)npages / (t1 - t0));
	fflush(stdout);
	mark(mark_path, 0);

	uint64_t bad = 0, checked = 0;
	uint64_t rng = mix(seed ^ 0x5eed);
	for (unsigned pass = 1; pass <= passes; pass++) {
		if (wait_path && wait_for(wait_path, pass, wait_ms)) {
			fprintf(stderr, "spill-workload: %s%u did not appear\n", wait_path, pass);
			return 3;
		}
		int shuffled = order != NULL;
		if (order_spec) {
			unsigned k = 0;
			for (const char *p = order_spec; *p; p++)
				if (*p != ',' && ++k == pass)
					shuffled = *p == 'r';
		}
		if (shuffled) {
			for (uint64_t i = 0; i < npages; i++)
				order[i] = (uint32_t)i;
			for (uint64_t i = npages - 1; i > 0; i--) {
				rng = mix(rng);
				uint64_t j = rng % (i + 1);
				uint32_t t = order[i];
				order[i] = order[j];
				order[j] = t;
			}
		}
		struct pageout_ctx po = { .mem = mem, .order = shuffled ? order : NULL,
					  .npages = npages };
		pthread_t po_thread;
		if (pageout && pthread_create(&po_thread, NULL, pageout_thread, &po)) {
			fprintf(stderr, "spill-workload: cannot start the pageout thread\n");
			return 1;
		}
		t0 = now_s();
		for (uint64_t k = 0; k < npages; k++) {
			uint64_t i = shuffled ? order[k] : k;
			uint64_t *w = (uint64_t *)(mem + i * PAGE);
			if (pageout && k % PAGEOUT_RUN == 0)
				pageout_wait(&po, k);
			if (check_page(w, i, version[i]) && ++bad >= 20) {
				fprintf(stderr, "spill-workload: giving up after 20 bad pages\n");
				return 1;
			}
			checked++;
			if (rewrite)
				fill_page(w, i, ++version[i]);
		}
		if (pageout) {
			__atomic_store_n(&po.stop, 1, __ATOMIC_RELEASE);
			pthread_join(po_thread, NULL);
			if (!quiet)
				printf("pageout: %" PRIu64 " pages asked to swap out\n", po.calls);
		}
		t1 = now_s();
		if (!quiet)
			printf("pass %u %" PRIu64 " pages %s%s in %.2f s (%.0f pages/s)\n", pass, npages,
			       shuffled ? "random" : "in order", rewrite ? ", rewritten" : "", t1 - t0,
			       (double)npages / (t1 - t0));
		fflush(stdout);
		mark(mark_path, pass);
	}
	printf("verified %" PRIu64 " page reads, %" PRIu64 " bad\n", checked, bad);
	fflush(stdout);
	if (hold && wait_path && wait_for(wait_path, passes + 1, wait_ms)) {
		fprintf(stderr, "spill-workload: %s%u did not appear\n", wait_path, passes + 1);
		return 3;
	}
	return bad ? 1 : 0;

usage:
	fprintf(stderr, "usage: spill-workload --size SIZE [--passes N] [--random] [--order r,s,...]\n"
			"       [--rewrite] [--seed N] [--thp] [--mark P] [--wait W] [--hold]\n"
			"       [--wait-ms N] [--pageout] [--quiet]\n");
	return 2;
}
