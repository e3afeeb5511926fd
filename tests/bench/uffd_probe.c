/* SPDX-License-Identifier: MIT */
/*
 * The limit a remote fault can reach on this machine, measured in this run:
 * userfaultfd in SIGBUS mode (the faulting thread serves its own fault, as
 * limits/uffd_sigbus.c), where the handler fetches the page with one loopback
 * round trip (16-byte request, 4 KiB reply, as limits/tcp_pingpong.c) and
 * installs it with UFFDIO_COPY. No lookup, no eviction, no protocol: what is
 * left is the floor. The two parts are also measured alone.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "bench.h"
#include "bench_pager.h"

#define REQ_BYTES 16
#define WARMUP    32   /* first touches also build page tables: not counted */

static struct {
	int uffd, sock;       /* sock < 0: copy the local page, no round trip */
	uint8_t *lo, *hi;     /* the registered range */
	uint8_t page[BENCH_PAGE] __attribute__((aligned(BENCH_PAGE)));
	volatile int failed;
} P;

static int read_full(int fd, void *buf, size_t n)
{
	for (size_t off = 0; off < n;) {
		ssize_t r = read(fd, (uint8_t *)buf + off, n - off);
		if (r <= 0 && !(r < 0 && errno == EINTR))
			return -1;
		if (r > 0)
			off += (size_t)r;
	}
	return 0;
}

/* Only async-signal-safe calls: send, read, ioctl. */
static void on_sigbus(int sig, siginfo_t *si, void *uctx)
{
	(void)uctx;
	uint8_t *addr = si->si_addr;
	if (addr < P.lo || addr >= P.hi) {
		signal(sig, SIG_DFL);  /* not ours: let it kill us */
		return;
	}
	int saved = errno;
	static const uint8_t req[REQ_BYTES];
	if (P.sock >= 0 && (send(P.sock, req, sizeof(req), MSG_NOSIGNAL) != sizeof(req) ||
			    read_full(P.sock, P.page, BENCH_PAGE)))
		P.failed = 1;
	struct uffdio_copy c = {
		.dst = (uintptr_t)addr & ~(uintptr_t)(BENCH_PAGE - 1),
		.src = (uintptr_t)P.page, .len = BENCH_PAGE,
	};
	if (ioctl(P.uffd, UFFDIO_COPY, &c) && errno != EEXIST)
		_exit(99);  /* the page cannot be installed: the load would loop */
	errno = saved;
}

/* Touch n fresh pages of a registered region, one fault each. */
static int touch_pages(unsigned n, struct lat_rec *lat)
{
	size_t len = (size_t)(n + WARMUP) * BENCH_PAGE;
	uint8_t *r = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (r == MAP_FAILED)
		return -errno;
	madvise(r, len, MADV_NOHUGEPAGE);
	struct uffdio_register reg = {
		.range = { .start = (uintptr_t)r, .len = len },
		.mode = UFFDIO_REGISTER_MODE_MISSING,
	};
	int rc = ioctl(P.uffd, UFFDIO_REGISTER, &reg) ? -errno : 0;
	P.lo = r;
	P.hi = r + len;
	volatile uint8_t sink = 0;
	for (unsigned i = 0; !rc && i < n + WARMUP && !P.failed; i++) {
		uint64_t t0 = now_ns();
		sink += r[(size_t)i * BENCH_PAGE];
		if (i >= WARMUP)
			lat_add(lat, now_ns() - t0);
	}
	(void)sink;
	P.lo = P.hi = NULL;
	munmap(r, len);
	return rc ? rc : P.failed ? -EIO : 0;
}

static int round_trips(unsigned n, struct lat_rec *lat)
{
	static const uint8_t req[REQ_BYTES];
	for (unsigned i = 0; i < n + WARMUP; i++) {
		uint64_t t0 = now_ns();
		if (send(P.sock, req, sizeof(req), MSG_NOSIGNAL) != sizeof(req) ||
		    read_full(P.sock, P.page, BENCH_PAGE))
			return -EIO;
		if (i >= WARMUP)
			lat_add(lat, now_ns() - t0);
	}
	return 0;
}

int uffd_probe(unsigned samples, struct probe_out *out)
{
	memset(out, 0, sizeof(*out));
	P.uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC);
	if (P.uffd < 0)
		return -errno;
	struct uffdio_api api = { .api = UFFD_API, .features = UFFD_FEATURE_SIGBUS };
	struct sigaction sa = { .sa_sigaction = on_sigbus, .sa_flags = SA_SIGINFO }, old;
	sigemptyset(&sa.sa_mask);
	struct raw_echo *echo = NULL;
	struct lat_rec both = { 0 }, fault = { 0 }, rtt = { 0 };
	int rc = ioctl(P.uffd, UFFDIO_API, &api) ? -errno : 0;
	if (!rc)
		rc = raw_echo_open(REQ_BYTES, &echo, &P.sock);
	if (!rc)
		rc = lat_init(&both, samples);
	if (!rc)
		rc = lat_init(&fault, samples);
	if (!rc)
		rc = lat_init(&rtt, samples);
	if (!rc)
		rc = sigaction(SIGBUS, &sa, &old) ? -errno : 0;
	if (!rc) {
		P.failed = 0;
		rc = touch_pages(samples, &both);
		int sock = P.sock;
		P.sock = -1;
		memset(P.page, 0x5a, sizeof(P.page));
		if (!rc)
			rc = touch_pages(samples, &fault);
		P.sock = sock;
		if (!rc)
			rc = round_trips(samples, &rtt);
		sigaction(SIGBUS, &old, NULL);
	}
	if (!rc) {
		out->n = (unsigned)both.n;
		out->fault_rtt_p50_us = lat_percentile_us(&both, 50);
		out->fault_rtt_p99_us = lat_percentile_us(&both, 99);
		out->fault_p50_us = lat_percentile_us(&fault, 50);
		out->rtt_p50_us = lat_percentile_us(&rtt, 50);
	}
	lat_free(&both);
	lat_free(&fault);
	lat_free(&rtt);
	if (echo) {
		shutdown(P.sock, SHUT_WR);
		int erc = raw_echo_close(echo);
		rc = rc ? rc : erc;
	}
	close(P.uffd);
	return rc;
}
