/* SPDX-License-Identifier: MIT */
/*
 * The client side of the vm/rdma scenario (tests/vm/scenarios/rdma.sh).
 * Each subcommand exits 0 when what it checks holds and prints one line
 * saying what failed otherwise.
 *
 *   rdma_check pager BUDGET_MIB THREADS REPLICAS [KILL_PID] -- URL...
 *       libspillway over the URLs: a region 8x the budget, random reads and
 *       writes from THREADS threads, every byte of every page verified
 *       against a generation pattern. With KILL_PID, that process gets
 *       SIGKILL halfway through (a server) and the run must still verify.
 *       Fails unless pages really went one-sided (RDMA counters moved).
 *   rdma_check isolation URL
 *       client a writes an extent one-sided and passes its key to client b;
 *       the server must refuse b a key of its own, and b's one-sided read
 *       with a's key must fail with EACCES (remote access error) and leave
 *       b's buffer without a's data; a's pages and connection are unharmed.
 *   rdma_check preauth URL PSK_FILE
 *       a victim (with the key) writes a page one-sided; then connections
 *       that present its token in the connect request, as anyone who saw
 *       one of its connect requests could, try its page with its address
 *       and key (the worst case: keys are guessable): one that never says
 *       Hello READs, one WRITEs, and one that authenticates but registers
 *       an identity of its own READs. Each transfer must fail, and the
 *       victim's page must read back unchanged over its own connection.
 *   rdma_check nolock PROGRAM ARGS...
 *       run PROGRAM without CAP_IPC_LOCK and with RLIMIT_MEMLOCK at 64 KiB.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "auth.h"
#include "client.h"
#include "ctrl.h"
#include "frame.h"
#include "spillway.h"
#include "transport.h"

#define PAGE 4096u

static int die(const char *what)
{
	fprintf(stderr, "rdma_check: FAIL: %s\n", what);
	exit(1);
}

/* --- pager ---------------------------------------------------------------- */

struct run {
	uint8_t *region;
	size_t pages;
	_Atomic uint32_t *gen;      /* per page: generation last written (0: never) */
	pthread_mutex_t *locks;     /* per 64 pages: one writer/reader at a time */
	unsigned ops_per_thread;
	atomic_uint done_ops;
	atomic_int bad;
	unsigned threads;
	pid_t kill_pid;
	atomic_int killed;
};

static uint64_t pattern(size_t page, uint32_t gen, size_t word)
{
	return ((uint64_t)page << 32 | gen) * 0x9e3779b97f4a7c15ull + word;
}

static void fill(uint8_t *p, size_t page, uint32_t gen)
{
	uint64_t *w = (uint64_t *)p;
	for (size_t i = 0; i < PAGE / 8; i++)
		w[i] = pattern(page, gen, i);
}

/* 1 when p holds page's pattern for generation gen (zeros for gen 0). */
static int check(const uint8_t *p, size_t page, uint32_t gen)
{
	const uint64_t *w = (const uint64_t *)p;
	for (size_t i = 0; i < PAGE / 8; i++)
		if (w[i] != (gen ? pattern(page, gen, i) : 0))
			return 0;
	return 1;
}

static void *worker(void *arg)
{
	struct run *r = arg;
	uint64_t x = (uint64_t)pthread_self() | 1;
	for (unsigned n = 0; n < r->ops_per_thread; n++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		size_t page = (size_t)(x % r->pages);
		pthread_mutex_t *l = &r->locks[page / 64];
		pthread_mutex_lock(l);
		uint8_t *p = r->region + page * PAGE;
		uint32_t gen = atomic_load(&r->gen[page]);
		if (!check(p, page, gen))
			atomic_fetch_add(&r->bad, 1);
		if (x & 2) { /* half the operations write */
			fill(p, page, gen + 1);
			atomic_store(&r->gen[page], gen + 1);
		}
		pthread_mutex_unlock(l);
		/* Halfway through the whole run, one server dies. */
		unsigned total = atomic_fetch_add(&r->done_ops, 1) + 1;
		if (r->kill_pid && total == r->ops_per_thread * r->threads / 2 &&
		    !atomic_exchange(&r->killed, 1)) {
			if (kill(r->kill_pid, SIGKILL))
				die("cannot kill the server");
			printf("rdma_check: killed server pid %d after %u operations\n",
			       (int)r->kill_pid, total);
		}
	}
	return NULL;
}

static int cmd_pager(int argc, char **argv)
{
	if (argc < 6)
		die("usage: pager BUDGET_MIB THREADS REPLICAS [KILL_PID] -- URL...");
	size_t budget = (size_t)atoi(argv[2]) << 20;
	unsigned threads = (unsigned)atoi(argv[3]);
	int replicas = atoi(argv[4]);
	int i = 5;
	pid_t kill_pid = 0;
	if (strcmp(argv[i], "--"))
		kill_pid = (pid_t)atoi(argv[i++]);
	if (strcmp(argv[i++], "--"))
		die("expected -- before the URLs");
	char name[32];
	snprintf(name, sizeof(name), "rdma-pager-r%d", replicas); /* one identity per run */
	struct spill_config cfg = { .local_budget = budget, .replicas = replicas, .name = name };
	for (; i < argc && cfg.nservers < SPILL_MAX_SERVERS; i++)
		cfg.servers[cfg.nservers++] = argv[i];
	spill_ctx *ctx = spill_open(&cfg);
	if (!ctx) {
		fprintf(stderr, "spill_open: %s\n", spill_strerror(errno));
		die("spill_open over rdma://");
	}
	struct run r = { .threads = threads, .kill_pid = kill_pid };
	size_t bytes = budget * 8;
	r.pages = bytes / PAGE;
	r.region = spill_alloc(ctx, bytes);
	r.gen = calloc(r.pages, sizeof(*r.gen));
	r.locks = calloc(r.pages / 64 + 1, sizeof(*r.locks));
	if (!r.region || !r.gen || !r.locks)
		die("spill_alloc");
	for (size_t l = 0; l < r.pages / 64 + 1; l++)
		pthread_mutex_init(&r.locks[l], NULL);
	/* Every page written once first, so the random phase reads far pages. */
	for (size_t p = 0; p < r.pages; p++) {
		fill(r.region + p * PAGE, p, 1);
		r.gen[p] = 1;
	}
	r.ops_per_thread = (unsigned)(r.pages * 2 / threads);
	pthread_t t[64];
	for (unsigned k = 0; k < threads && k < 64; k++)
		pthread_create(&t[k], NULL, worker, &r);
	for (unsigned k = 0; k < threads && k < 64; k++)
		pthread_join(t[k], NULL);
	size_t wrong = 0;
	for (size_t p = 0; p < r.pages; p++)
		wrong += !check(r.region + p * PAGE, p, r.gen[p]);
	struct spill_stats st;
	spill_stats(ctx, &st);
	printf("rdma_check: pager %zu MiB region, %u threads, replicas %d: %u checks wrong "
	       "during the run, %zu pages wrong at the end, faults %llu, remote reads %llu, "
	       "writes %llu, failovers %llu, lost %llu, servers up %d\n",
	       bytes >> 20, threads, replicas, (unsigned)atomic_load(&r.bad), wrong,
	       (unsigned long long)st.faults, (unsigned long long)st.remote_reads,
	       (unsigned long long)st.remote_writes, (unsigned long long)st.failovers,
	       (unsigned long long)st.lost_pages, st.servers_up);
	if (atomic_load(&r.bad) || wrong)
		die("data did not verify");
	if (!st.remote_reads || !st.remote_writes)
		die("nothing was paged: the budget held everything");
	if (kill_pid && !atomic_load(&r.killed))
		die("the server was never killed");
	spill_close(ctx);
	printf("rdma_check: pager ok\n");
	return 0;
}

/* --- isolation -------------------------------------------------------------- */

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static struct client *open_client(const char *url, const char *name, const uint8_t *token,
				  const struct auth_psk *psk)
{
	double t0 = now_s();
	struct client_opts o = { .name = name, .timeout_ms = 10000, .token = token, .psk = psk };
	struct client *c;
	char why[512];
	int rc = client_connect(url, &o, &c, why, sizeof(why));
	if (rc) {
		fprintf(stderr, "%s: %s\n", name, why);
		die("connect");
	}
	printf("rdma_check: %s connected in %.3f s\n", name, now_s() - t0);
	return c;
}

/* An identity with one extent whose page 7 it wrote one-sided: the
 * registering connection allocates and a second one, joined with the
 * identity's token, moves the data (as libspillway does). */
struct owner {
	struct client *reg, *data;
	struct client_extent e;
	uint64_t addr;   /* the extent's address and key on the server */
	uint32_t rkey;
};

static void owner_open(struct owner *o, const char *url, const char *name,
		       const struct auth_psk *psk)
{
	o->reg = open_client(url, name, NULL, psk);
	double t0 = now_s();
	if (client_alloc_extents(o->reg, 1, -1, &o->e))
		die("owner: alloc");
	o->data = open_client(url, name, client_token(o->reg), psk);
	printf("rdma_check: %s allocated in %.3f s\n", name, now_s() - t0);
	t0 = now_s();
	if (client_rdma_key_get(o->data, o->e.id, &o->addr, &o->rkey))
		die("owner: no remote key (one-sided access is off)");
	printf("rdma_check: %s got its key in %.3f s\n", name, now_s() - t0);
	t0 = now_s();
	static uint8_t page[PAGE], back[PAGE];
	fill(page, 7, 3);
	if (client_write(o->data, o->e.id, 7, 1, page))
		die("owner: one-sided write");
	memset(back, 0, sizeof(back));
	if (client_read(o->data, o->e.id, 7, 1, back, NULL) || !check(back, 7, 3))
		die("owner: one-sided read-back");
	printf("rdma_check: %s wrote and read back page 7 of extent %llu in %.3f s "
	       "(address %#llx, key %#x)\n", name, (unsigned long long)o->e.id,
	       now_s() - t0, (unsigned long long)(o->addr + 7 * PAGE), o->rkey);
}

/* Is page 7 still what the owner wrote (read over its own connection)? */
static int owner_page_intact(struct owner *o)
{
	static uint8_t back[PAGE];
	memset(back, 0, sizeof(back));
	return !client_read(o->data, o->e.id, 7, 1, back, NULL) && check(back, 7, 3);
}

/* The owner carries on: its connection still moves data both ways. */
static void owner_close(struct owner *o)
{
	static uint8_t page[PAGE], back[PAGE];
	fill(page, 8, 4);
	if (client_write(o->data, o->e.id, 8, 1, page) ||
	    client_read(o->data, o->e.id, 8, 1, back, NULL) || !check(back, 8, 4))
		die("owner: write and read page 8 after the attempts");
	printf("rdma_check: owner unaffected: pages 7 and 8 verify\n");
	client_close(o->data);
	client_close(o->reg);
}

static int cmd_isolation(const char *url)
{
	struct owner own;
	owner_open(&own, url, "owner", NULL);
	struct client_extent e = own.e;
	static uint8_t back[PAGE];

	/* b asks the server for a's key the honest way: refused. */
	struct client *b = open_client(url, "intruder", NULL, NULL);
	uint64_t baddr;
	uint32_t bkey;
	int rc = client_rdma_key_get(b, e.id, &baddr, &bkey);
	if (rc == 0)
		die("the server gave the intruder a key to another identity's extent");
	/* b uses a's key anyway: the HCA must refuse it. */
	client_rdma_key_set(b, e.id, own.addr, own.rkey, e.npages);
	memset(back, 0xa5, sizeof(back));
	rc = client_read(b, e.id, 7, 1, back, NULL);
	printf("rdma_check: intruder read with the owner's key: %s\n", strerror(-rc));
	if (rc != -EACCES)
		die("a foreign key did not fail with a remote access error");
	if (check(back, 7, 3))
		die("the intruder's buffer holds the owner's data");
	client_close(b);

	/* The scenario runs the pager on this server next. */
	if (!owner_page_intact(&own))
		die("owner: page 7 after the intruder's attempt");
	owner_close(&own);
	printf("rdma_check: isolation ok\n");
	return 0;
}

/* --- preauth --------------------------------------------------------------- */

/* A bare rdma:// connection whose connect request carries token. */
static struct stream *raw_connect(const char *url, const uint8_t *token)
{
	char why[320] = "";
	struct transport_params p = { .timeout_ms = 10000, .token = token, .why = why,
				      .why_cap = sizeof(why) };
	struct stream *t;
	if (transport_connect(url, &p, &t)) {
		fprintf(stderr, "%s\n", why);
		die("raw connect with the victim's token");
	}
	return t;
}

/* One one-sided transfer of a page on t: its completion status (0 or
 * -errno), or the error posting it. */
static int raw_onesided(struct stream *t, int write, uint64_t addr, uint32_t rkey, void *buf)
{
	int rc = t->ops->post_onesided(t, write, addr, rkey, buf, PAGE, 1);
	if (rc)
		return rc;
	uint64_t cookie;
	int status;
	for (double end = now_s() + 20; now_s() < end;) {
		if (t->ops->reap_onesided(t, &cookie, &status, 1) == 1)
			return status;
		struct pollfd pf = { .fd = stream_fd(t), .events = POLLIN };
		poll(&pf, 1, 100);
	}
	die("no completion for a one-sided transfer in 20 s");
	return -1;
}

/* One control request on a bare transport, its reply (ctrl_free it). */
static Spillway__Ctrl *raw_ctrl(struct stream *t, const Spillway__Ctrl *req)
{
	static uint8_t buf[65536];
	size_t len = ctrl_packed_size(req);
	if (len > sizeof(buf) || ctrl_pack(req, buf, sizeof(buf)) < 0)
		die("pack");
	struct frame_hdr h = { .version = SPILL_WIRE_VERSION, .op = SPILL_OP_CTRL, .req_id = 1,
			       .payload_len = (uint32_t)len };
	struct spill_wire_hdr w;
	struct iovec iov[2] = { { &w, sizeof(w) }, { buf, len } };
	frame_hdr_pack(&h, &w);
	frame_seal(&w, &iov[1], 1);
	if (stream_sendv(t, iov, 2) != (ssize_t)(sizeof(w) + len))
		die("send a control frame");
	/* Reply: header, then payload, read in full. */
	size_t want = sizeof(w), have = 0;
	uint8_t *dst = (uint8_t *)&w;
	for (int part = 0; part < 2; part++) {
		while (have < want) {
			ssize_t n = stream_recv_wait(t, dst + have, want - have);
			if (n == -EINTR)
				continue;
			if (n == -EAGAIN)
				die("no control reply within the connect timeout");
			if (n <= 0)
				die("control reply: connection closed");
			have += (size_t)n;
		}
		if (part == 0) {
			if (frame_hdr_unpack(&w, &h, NULL) || h.payload_len > sizeof(buf))
				die("control reply header");
			want = h.payload_len;
			have = 0;
			dst = buf;
		}
	}
	int err;
	Spillway__Ctrl *m = ctrl_unpack(buf, h.payload_len, &err, NULL);
	if (!m)
		die("control reply");
	return m;
}

/* Hello, Auth with psk and Register as name (a new identity), by hand on
 * t, whose connect request carried another identity's token. */
static void raw_register(struct stream *t, const struct auth_psk *psk, const char *name)
{
	uint8_t cn[AUTH_NONCE_BYTES], sn[AUTH_NONCE_BYTES], mac[AUTH_MAC_BYTES];
	if (auth_random(cn, sizeof(cn)))
		die("random");
	Spillway__Hello hello = SPILLWAY__HELLO__INIT;
	hello.version = SPILL_WIRE_VERSION;
	hello.client_nonce.data = cn;
	hello.client_nonce.len = sizeof(cn);
	Spillway__Ctrl req = SPILLWAY__CTRL__INIT;
	req.msg_case = SPILLWAY__CTRL__MSG_HELLO;
	req.hello = &hello;
	Spillway__Ctrl *rep = raw_ctrl(t, &req);
	if (rep->msg_case != SPILLWAY__CTRL__MSG_HELLO_REPLY)
		die("no HelloReply");
	memcpy(sn, rep->hello_reply->server_nonce.data, sizeof(sn));
	ctrl_free(rep);
	auth_mac(psk, AUTH_ROLE_CLIENT, sn, cn, mac);
	Spillway__Auth a = SPILLWAY__AUTH__INIT;
	a.mac.data = mac;
	a.mac.len = sizeof(mac);
	req.msg_case = SPILLWAY__CTRL__MSG_AUTH;
	req.auth = &a;
	rep = raw_ctrl(t, &req);
	if (rep->msg_case != SPILLWAY__CTRL__MSG_AUTH_REPLY)
		die("no AuthReply");
	ctrl_free(rep);
	Spillway__Register r = SPILLWAY__REGISTER__INIT;
	r.name = (char *)name;
	req.msg_case = SPILLWAY__CTRL__MSG_REGISTER;
	req.register_ = &r;
	rep = raw_ctrl(t, &req);
	if (rep->msg_case != SPILLWAY__CTRL__MSG_REGISTER_REPLY)
		die("no RegisterReply");
	ctrl_free(rep);
}

static int cmd_preauth(const char *url, const char *psk_file)
{
	struct auth_psk psk;
	if (auth_psk_load(psk_file, &psk))
		die("cannot load the key");
	struct owner victim;
	owner_open(&victim, url, "victim", &psk);
	const uint8_t *token = client_token(victim.reg);
	uint64_t at = victim.addr + 7 * PAGE;
	uint32_t rkey = victim.rkey;
	static uint8_t back[PAGE], junk[PAGE];

	/* Every attempt runs and reports; the verdict comes at the end. */
	int bad = 0;
	/* No Hello at all: the token, then straight to the HCA. */
	struct stream *t = raw_connect(url, token);
	memset(back, 0, sizeof(back));
	int rc = raw_onesided(t, 0, at, rkey, back);
	printf("rdma_check: READ before Hello, with the victim's token and key: %s%s\n",
	       rc ? strerror(-rc) : "succeeded", check(back, 7, 3) ? ", got the victim's page" : "");
	bad += !rc || check(back, 7, 3);
	stream_close(t);
	t = raw_connect(url, token);
	fill(junk, 7, 99);
	rc = raw_onesided(t, 1, at, rkey, junk);
	printf("rdma_check: WRITE before Hello, with the victim's token and key: %s\n",
	       rc ? strerror(-rc) : "succeeded");
	bad += !rc;
	stream_close(t);

	/* The key, but another identity: its QP is in the victim's domain. */
	t = raw_connect(url, token);
	raw_register(t, &psk, "mallory");
	memset(back, 0, sizeof(back));
	rc = raw_onesided(t, 0, at, rkey, back);
	printf("rdma_check: READ by another identity with the victim's token and key: %s%s\n",
	       rc ? strerror(-rc) : "succeeded", check(back, 7, 3) ? ", got the victim's page" : "");
	bad += !rc || check(back, 7, 3);
	stream_close(t);

	int intact = owner_page_intact(&victim);
	printf("rdma_check: victim's page 7 afterwards: %s\n", intact ? "unchanged" : "CHANGED");
	if (bad || !intact)
		die("a token without authentication, or another identity, reached the victim's page");
	owner_close(&victim);
	printf("rdma_check: preauth ok\n");
	return 0;
}

/* --- nolock ----------------------------------------------------------------- */

static int cmd_nolock(char **argv)
{
	/* Root regains every capability in the bounding set at exec: drop
	 * CAP_IPC_LOCK from it, so the memlock limit binds. */
	if (prctl(PR_CAPBSET_DROP, 14 /* CAP_IPC_LOCK */, 0, 0, 0))
		die("PR_CAPBSET_DROP");
	struct rlimit rl = { 64 << 10, 64 << 10 };
	if (setrlimit(RLIMIT_MEMLOCK, &rl))
		die("setrlimit");
	execvp(argv[0], argv);
	perror(argv[0]);
	return 127;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc >= 2 && !strcmp(argv[1], "pager"))
		return cmd_pager(argc, argv);
	if (argc == 3 && !strcmp(argv[1], "isolation"))
		return cmd_isolation(argv[2]);
	if (argc == 4 && !strcmp(argv[1], "preauth"))
		return cmd_preauth(argv[2], argv[3]);
	if (argc >= 3 && !strcmp(argv[1], "nolock"))
		return cmd_nolock(argv + 2);
	fprintf(stderr, "usage: rdma_check pager|isolation|preauth|nolock ...\n");
	return 2;
}
