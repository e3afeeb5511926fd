/* SPDX-License-Identifier: MIT */
/*
 * memcached as the baseline: 4 KiB get and set over its text protocol, one
 * connection, requests pipelined through the same harness as spillwayd.
 * Values are checked on get exactly as spillway READs are checked.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"

#define RX_CAP (512 * 1024)
#define REQ_MAX (BENCH_PAGE + 64)

struct mc_bench {
	struct netio io;
	uint64_t nkeys;
	uint8_t *values;
	char version[64];
	int is_set;
	int fifo[BENCH_MAX_DEPTH];   /* slots in submission order */
	uint64_t key[BENCH_MAX_DEPTH];
	unsigned head, count;
};

static uint64_t key_of(const struct mc_bench *m, uint64_t seq)
{
	return (seq * 0x9e3779b1u) & (m->nkeys - 1);
}

static int mc_submit(void *ctx, int slot, uint64_t seq)
{
	struct mc_bench *m = ctx;
	uint64_t k = key_of(m, seq);
	char hdr[64];
	struct iovec iov[3];
	int cnt = 1;
	if (m->is_set) {
		iov[0].iov_len = (size_t)snprintf(hdr, sizeof(hdr), "set k%llu 0 0 %u\r\n",
						  (unsigned long long)k, BENCH_PAGE);
		iov[1] = (struct iovec){ m->values + k * BENCH_PAGE, BENCH_PAGE };
		iov[2] = (struct iovec){ "\r\n", 2 };
		cnt = 3;
	} else {
		iov[0].iov_len = (size_t)snprintf(hdr, sizeof(hdr), "get k%llu\r\n",
						  (unsigned long long)k);
	}
	iov[0].iov_base = hdr;
	unsigned tail = (m->head + m->count++) % BENCH_MAX_DEPTH;
	m->fifo[tail] = slot;
	m->key[tail] = k;
	return netio_queue(&m->io, iov, cnt);
}

/* Length of the first line including its CRLF, or 0 if not all here yet. */
static size_t line_len(const uint8_t *p, size_t avail)
{
	const uint8_t *nl = memchr(p, '\n', avail);
	return nl ? (size_t)(nl - p) + 1 : 0;
}

static int protocol_error(const char *what, const uint8_t *line, size_t len)
{
	fprintf(stderr, "spillway-bench: memcached %s: unexpected reply '%.*s'\n", what,
		(int)(len > 2 ? len - 2 : len), (const char *)line);
	return -EPROTO;
}

/* One reply for the oldest request: 1 parsed, 0 incomplete, or -errno. */
static int parse_reply(struct mc_bench *m)
{
	const uint8_t *p = netio_data(&m->io);
	size_t avail = netio_avail(&m->io), len = line_len(p, avail);
	if (!len)
		return 0;
	if (m->is_set) {
		if (len != 8 || memcmp(p, "STORED\r\n", 8))
			return protocol_error("set", p, len);
		netio_consume(&m->io, len);
		return 1;
	}
	char text[96]; /* sscanf needs a terminated string; the buffer has none */
	snprintf(text, sizeof(text), "%.*s", (int)(len < sizeof(text) ? len : sizeof(text) - 1),
		 (const char *)p);
	unsigned long long key;
	unsigned flags, bytes;
	if (sscanf(text, "VALUE k%llu %u %u", &key, &flags, &bytes) != 3 ||
	    key != m->key[m->head] || bytes != BENCH_PAGE)
		return protocol_error("get", p, len);
	size_t total = len + BENCH_PAGE + 2 + 5;
	if (avail < total)
		return 0;
	if (memcmp(p + len + BENCH_PAGE, "\r\nEND\r\n", 7))
		return protocol_error("get", p + len + BENCH_PAGE, 7);
	if (sample_differs(p + len, m->values + key * BENCH_PAGE)) {
		fprintf(stderr, "spillway-bench: memcached get k%llu returned wrong data\n", key);
		return -EIO;
	}
	netio_consume(&m->io, total);
	return 1;
}

static int mc_complete(void *ctx, int *slots, int max)
{
	struct mc_bench *m = ctx;
	int n = 0;
	while (n < max && m->count) {
		int rc = parse_reply(m);
		if (rc < 0)
			return rc;
		if (rc == 1) {
			slots[n++] = m->fifo[m->head];
			m->head = (m->head + 1) % BENCH_MAX_DEPTH;
			m->count--;
			continue;
		}
		if (n)
			break;
		rc = netio_fill(&m->io);
		if (rc < 0) {
			fprintf(stderr, "spillway-bench: memcached: %s\n", strerror(-rc));
			return rc;
		}
	}
	return n;
}

int mc_measure(struct mc_bench *m, int is_set, const struct run_plan *p, struct result *out)
{
	m->is_set = is_set;
	m->head = m->count = 0;
	struct driver d = { m, mc_submit, mc_complete };
	return run_pipelined(&d, p, out);
}

static int query_version(struct mc_bench *m)
{
	struct iovec iov = { "version\r\n", 9 };
	int rc = netio_queue(&m->io, &iov, 1);
	if (rc)
		return rc;
	size_t len;
	while (!(len = line_len(netio_data(&m->io), netio_avail(&m->io))))
		if ((rc = netio_fill(&m->io)) < 0)
			return rc;
	const char *line = (const char *)netio_data(&m->io);
	if (len < 10 || strncmp(line, "VERSION ", 8))
		return protocol_error("version", netio_data(&m->io), len);
	snprintf(m->version, sizeof(m->version), "%.*s", (int)(len - 10), line + 8);
	netio_consume(&m->io, len);
	return 0;
}

int mc_open(int port, uint64_t nkeys, struct mc_bench **out)
{
	if (nkeys == 0 || (nkeys & (nkeys - 1)))
		return -EINVAL;
	struct mc_bench *m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->nkeys = nkeys;
	m->values = malloc(nkeys * BENCH_PAGE);
	int fd = tcp_connect_loopback(port);
	int rc = !m->values ? -ENOMEM : fd < 0 ? fd
		 : netio_init(&m->io, fd, BENCH_MAX_DEPTH * REQ_MAX, RX_CAP);
	if (rc) {
		if (fd >= 0)
			close(fd);
		free(m->values);
		free(m);
		return rc;
	}
	for (uint64_t k = 0; k < nkeys; k++)
		pattern_fill(m->values + k * BENCH_PAGE, k);
	rc = query_version(m);
	/* Set every key first, as the spillway pages are pre-written. */
	struct run_plan p = { .ops = nkeys, .depth = 32, .bytes_per_op = BENCH_PAGE };
	struct result ignored;
	if (!rc)
		rc = mc_measure(m, 1, &p, &ignored);
	if (rc) {
		mc_close(m);
		return rc;
	}
	*out = m;
	return 0;
}

void mc_close(struct mc_bench *m)
{
	if (!m)
		return;
	close(m->io.fd);
	netio_free(&m->io);
	free(m->values);
	free(m);
}

const char *mc_version(const struct mc_bench *m)
{
	return m->version;
}
