/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the core client's receive path (lib/client.c)
 * against a hostile server, through the public API only.
 *
 * A thread of this harness plays the server on a loopback TCP listener: it
 * accepts the client's connection, writes the input to it as everything the
 * server ever says (each reply frame once the client has sent the request
 * it answers; see serve), closes its sending side, reads whatever the
 * client sends until the client closes, and resets the connection (no
 * TIME_WAIT left behind). Meanwhile the client connects (Hello, maybe Auth
 * and Register) and, if that works, runs a fixed session: AllocExtent, a
 * synchronous 2-page READ, four asynchronous requests (READ with a presence
 * map, WRITE, INVALIDATE, PING) reaped together, Stats, FreeExtent, with a
 * notification callback set. The client's request ids are deterministic, so
 * seeds (gen_corpus) answer them exactly.
 *
 * Input: byte 0 is a mode, the rest is the server's byte stream.
 *   bit 0  the client holds a key (it must then insist on the server's proof)
 *   bit 1  the client registers as "fz"
 *   bit 2  reseal: fix the CRC of every whole frame in the stream
 *   bit 3  write the stream in pieces of 7 bytes (partial headers)
 *
 * Checked: nothing crashes, overruns or leaks; every call returns 0 or
 * -errno; the client never waits out its timeout, since the server end
 * always closes (a timeout means it missed the end of the stream); a
 * client holding a key never completes a handshake the server did not
 * prove (the fake server cannot know the key).
 *
 * FUZZ_DEBUG=1 in the environment prints how far each session got.
 */
#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client.h"
#include "fuzz_check.h"
#include "fuzz_stream.h"

static int listen_fd = -1;
static char url[64];

struct fake_server {
	const uint8_t *stream;
	size_t len;
	size_t piece;
	int fd;
	/* The client's requests as they arrive: header bytes, payload to skip. */
	uint8_t hdr[SPILL_WIRE_HDR_SIZE];
	size_t have;
	uint64_t skip;
	uint64_t seen[1024]; /* request ids sent so far */
	unsigned nseen;
	int client_gone;
};

static pid_t client_tid; /* the thread running the client */

/* Is the client thread asleep (waiting for us, as nothing else blocks it)? */
static int client_waits(void)
{
	char path[64], buf[256];
	snprintf(path, sizeof(path), "/proc/self/task/%d/stat", (int)client_tid);
	FILE *f = fopen(path, "re");
	if (!f)
		return 1;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	const char *end = strrchr(buf, ')');
	return !end || end[1] != ' ' || end[2] == 'S' || end[2] == 'D';
}

static int seen(const struct fake_server *fs, uint64_t req_id)
{
	if (fs->nseen == sizeof(fs->seen) / sizeof(fs->seen[0]))
		return 1; /* stopped counting: let everything through */
	for (unsigned i = 0; i < fs->nseen; i++)
		if (fs->seen[i] == req_id)
			return 1;
	return 0;
}

/* Read what the client sent, noting its request ids. Waits up to wait_ms
 * for the first byte; returns the bytes read (0 on silence or end). */
static size_t take_input(struct fake_server *fs, int wait_ms)
{
	uint8_t buf[16 * 1024];
	struct pollfd p = { fs->fd, POLLIN, 0 };
	if (fs->client_gone || poll(&p, 1, wait_ms) <= 0)
		return 0;
	ssize_t n = recv(fs->fd, buf, sizeof(buf), MSG_DONTWAIT);
	if (n <= 0) {
		if (n == 0 || errno != EAGAIN)
			fs->client_gone = 1;
		return 0;
	}
	for (size_t off = 0; off < (size_t)n;) {
		if (fs->skip) {
			size_t k = (size_t)n - off < fs->skip ? (size_t)n - off : (size_t)fs->skip;
			fs->skip -= k;
			off += k;
			continue;
		}
		size_t k = sizeof(fs->hdr) - fs->have;
		if (k > (size_t)n - off)
			k = (size_t)n - off;
		memcpy(fs->hdr + fs->have, buf + off, k);
		fs->have += k;
		off += k;
		if (fs->have < sizeof(fs->hdr))
			continue;
		struct spill_wire_hdr w;
		memcpy(&w, fs->hdr, sizeof(w));
		if (fs->nseen < sizeof(fs->seen) / sizeof(fs->seen[0]))
			fs->seen[fs->nseen++] = le64toh(w.req_id);
		fs->skip = le32toh(w.payload_len);
		fs->have = 0;
	}
	return (size_t)n;
}

/* Send len bytes, in pieces if asked, reading the client meanwhile. */
static void give(struct fake_server *fs, const uint8_t *p, size_t len)
{
	while (len && !fs->client_gone) {
		size_t want = fs->piece && len > fs->piece ? fs->piece : len;
		ssize_t n = send(fs->fd, p, want, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n > 0) {
			p += n;
			len -= (size_t)n;
		} else if (n < 0 && errno != EAGAIN) {
			fs->client_gone = 1;
		} else {
			take_input(fs, 10);
		}
	}
}

/*
 * The server side. A reply frame goes out once the client has sent the
 * request it answers (a reply to a request not yet made is a protocol
 * error to the client, and would hide everything after it), or once the
 * client sleeps without having sent it (it waits for something else);
 * other frames go out at once.
 */
static void *serve(void *arg)
{
	struct fake_server *fs = arg;
	fs->fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
	if (fs->fd < 0)
		return NULL;
	int one = 1;
	setsockopt(fs->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	size_t off = 0;
	while (off < fs->len && !fs->client_gone) {
		size_t n = fuzz_frame_len(fs->stream + off, fs->len - off);
		if (n >= SPILL_WIRE_HDR_SIZE) {
			struct spill_wire_hdr w;
			memcpy(&w, fs->stream + off, sizeof(w));
			uint64_t id = le64toh(w.req_id);
			if (le16toh(w.op) & SPILL_OP_REPLY)
				while (!seen(fs, id) && !fs->client_gone)
					if (!take_input(fs, 1) && client_waits() && !take_input(fs, 0))
						break;
		}
		take_input(fs, 0);
		give(fs, fs->stream + off, n);
		off += n;
	}
	shutdown(fs->fd, SHUT_WR);
	/* Until the client closes (bounded: it must, having seen the end). */
	for (int i = 0; i < 1000 && !fs->client_gone; i++)
		take_input(fs, 20);
	struct linger lg = { 1, 0 };
	setsockopt(fs->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(fs->fd);
	return NULL;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	signal(SIGPIPE, SIG_IGN);
	listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t alen = sizeof(a);
	if (listen_fd < 0 || bind(listen_fd, (struct sockaddr *)&a, sizeof(a)) ||
	    listen(listen_fd, 4) || getsockname(listen_fd, (struct sockaddr *)&a, &alen))
		abort();
	snprintf(url, sizeof(url), "tcp://127.0.0.1:%d", ntohs(a.sin_port));
	return 0;
}

static int notified;

static void on_notify(struct client *c, Spillway__Ctrl *msg, void *arg)
{
	(void)c;
	(void)arg;
	CHECK(msg != NULL);
	notified++;
	ctrl_free(msg);
}

/* A call's result: 0, a count, or -errno, and never a missed end of stream. */
static void check_rc(int rc)
{
	CHECK(rc > -4096);
	CHECK(rc != -ETIMEDOUT);
}

static void session(struct client *c)
{
	static uint8_t pages[2 * SPILL_PAGE_SIZE], one[SPILL_PAGE_SIZE];
	static uint8_t present[SPILL_PRESENT_MAP_BYTES];
	client_set_notify(c, on_notify, NULL);

	struct client_extent ext = { .id = 1, .npages = 256 };
	check_rc(client_alloc_extents(c, 1, -1, &ext));
	check_rc(client_read(c, ext.id, 0, 2, pages, present));

	struct client_req r[4] = {
		{ .op = SPILL_OP_READ, .extent = ext.id, .npages = 1, .buf = one,
		  .present = present },
		{ .op = SPILL_OP_WRITE, .extent = ext.id, .page = 1, .npages = 1, .buf = pages },
		{ .op = SPILL_OP_INVALIDATE, .extent = ext.id, .page = 2, .npages = 1 },
		{ .op = SPILL_OP_PING },
	};
	int submitted = 0;
	for (int i = 0; i < 4; i++) {
		int rc = client_submit(c, &r[i]);
		check_rc(rc);
		if (rc == 0)
			submitted++;
	}
	struct client_req *done[4];
	int n = client_reap(c, done, 4, submitted);
	check_rc(n);
	CHECK(n <= submitted);
	for (int i = 0; i < n; i++) {
		CHECK(done[i] >= r && done[i] < r + 4);
		CHECK(done[i]->done);
	}
	/* In flight: the four, and the synchronous READ if it never completed. */
	CHECK(client_inflight(c) >= 0 && client_inflight(c) <= submitted + 1);

	Spillway__Stats st = SPILLWAY__STATS__INIT;
	Spillway__Ctrl req = SPILLWAY__CTRL__INIT, *rep = NULL;
	req.msg_case = SPILLWAY__CTRL__MSG_STATS;
	req.stats = &st;
	char why[128];
	int rc = client_ctrl(c, &req, &rep, why, sizeof(why));
	check_rc(rc);
	CHECK(rc == 0 || rep == NULL);
	ctrl_free(rep);
	uint64_t ids[1] = { ext.id };
	check_rc(client_free_extents(c, ids, 1));
	check_rc(client_dead(c));
	if (getenv("FUZZ_DEBUG"))
		fprintf(stderr, "session: stats %d, dead %d, %d notifications\n", rc,
			client_dead(c), notified);
	/* Requests still in flight on a dead connection are dropped by close. */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	uint8_t mode = data[0];
	struct fake_server fs = { .len = size - 1, .piece = (mode & 8) ? 7 : 0 };
	uint8_t *stream = malloc(fs.len ? fs.len : 1);
	CHECK(stream != NULL);
	memcpy(stream, data + 1, fs.len);
	if (mode & 4)
		fuzz_reseal(stream, fs.len);
	fs.stream = stream;

	client_tid = gettid();
	pthread_t t;
	CHECK(pthread_create(&t, NULL, serve, &fs) == 0);

	static const struct auth_psk key = { 16, "fuzz-client-key" };
	struct client_opts o = {
		.psk = (mode & 1) ? &key : NULL,
		.name = (mode & 2) ? "fz" : NULL,
		.timeout_ms = 5000,
	};
	struct client *c = NULL;
	char err[256];
	notified = 0;
	int rc = client_connect(url, &o, &c, err, sizeof(err));
	if (getenv("FUZZ_DEBUG"))
		fprintf(stderr, "connect: %d %s\n", rc, err);
	check_rc(rc);
	CHECK(memchr(err, 0, sizeof(err)) != NULL);
	if (rc == 0) {
		CHECK(c != NULL);
		/* Only the key's holder can prove it; this server cannot. */
		CHECK(!(mode & 1));
		CHECK(client_window(c) >= 1);
		session(c);
		client_close(c);
	} else {
		CHECK(c == NULL);
	}
	pthread_join(t, NULL);
	free(stream);
	return 0;
}
