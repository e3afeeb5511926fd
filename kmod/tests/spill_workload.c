/* SPDX-License-Identifier: MIT */
/*
 * spill-workload: fill anonymous memory with pages whose every byte is
 * known, then read them back and check each one, so that a swap device
 * that loses, misplaces, zeroes or mixes a page is caught.
 *
 *   spill-workload --size SIZE [--passes N] [--random] [--order r,s,...]
 *                  [--rewrite] [--seed N] [--thp] [--mark P] [--wait W]
 *                  [--hold] [--wait-ms N] [--quiet]
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
 * the last pass N before exiting (and freeing its memory). Output: one line per phase with pages/s; a bad
 * page is described (what it holds instead) and the exit status is 1.
 * Exit 2 for usage errors, 3 if a wait expired.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096u
#define WORDS (PAGE / 8)

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

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
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
		{ NULL, 0, NULL, 0 },
	};
	uint64_t size = 0;
	unsigned passes = 1;
	int random_order = 0, rewrite = 0, thp = 0, quiet = 0, hold = 0;
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
		default: goto usage;
		}
	}
	if (!size || optind != argc)
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
		t0 = now_s();
		for (uint64_t k = 0; k < npages; k++) {
			uint64_t i = shuffled ? order[k] : k;
			uint64_t *w = (uint64_t *)(mem + i * PAGE);
			if (check_page(w, i, version[i]) && ++bad >= 20) {
				fprintf(stderr, "spill-workload: giving up after 20 bad pages\n");
				return 1;
			}
			checked++;
			if (rewrite)
				fill_page(w, i, ++version[i]);
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
			"       [--wait-ms N] [--quiet]\n");
	return 2;
}
