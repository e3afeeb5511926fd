/* SPDX-License-Identifier: MIT */
/*
 * libspillway beyond plain loads and stores: system calls on far buffers,
 * fork with a live far region, spill_free and munmap racing faulting
 * threads, shrinking the budget at run time, and a server's reclaim request.
 */
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "harness.h"
#include "pager_test.h"
#include "spillway.h"

#define PG 4096u
#define MB (1024u * 1024u)
#define BUDGET (8 * MB)
#define REGION (64 * MB)
#define NPAGES (REGION / PG)

static struct srv server;
static spill_ctx *ctx;

static void fill(uint8_t *base, uint32_t npages, uint32_t gen)
{
	for (uint32_t p = 0; p < npages; p++)
		fill_page(base + (size_t)p * PG, ((uint64_t)gen << 32) | p);
}

static int bad_pages(const uint8_t *base, uint32_t first, uint32_t n, uint32_t gen)
{
	int bad = 0;
	for (uint32_t p = first; p < first + n; p++)
		bad += !check_page(base + (size_t)p * PG, ((uint64_t)gen << 32) | p);
	return bad;
}

/* --- system calls ------------------------------------------------------------ */

static void read_and_write_syscalls_on_far_buffers(void **state)
{
	(void)state;
	pager_rearm();
	uint8_t *a = spill_alloc(ctx, REGION), *b = spill_alloc(ctx, REGION);
	assert_non_null(a);
	assert_non_null(b);
	fill(a, NPAGES, 1);
	/* a's first pages are long evicted: write(2) must read them back. */
	char path[] = "/tmp/spill-syscall-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	unlink(path);
	size_t len = 12 * MB; /* more than one pinned slice */
	assert_int_equal(write(fd, a, len), (ssize_t)len);
	assert_int_equal(pwrite(fd, a + 40 * MB, 2 * MB, (off_t)len), 2 * MB);
	/* read(2) into far memory, also evicted meanwhile. */
	assert_int_equal(pread(fd, b, len, 0), (ssize_t)len);
	assert_int_equal(bad_pages(b, 0, (uint32_t)(len / PG), 1), 0);
	assert_int_equal(pread(fd, b + 20 * MB, 2 * MB, (off_t)len), 2 * MB);
	assert_int_equal(memcmp(b + 20 * MB, a + 40 * MB, 2 * MB), 0);
	/* Vectors, across both regions. */
	struct iovec iov[2] = { { a + 30 * MB, PG * 3 }, { b + 50 * MB, PG * 2 } };
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	assert_int_equal(readv(fd, iov, 2), PG * 5);
	assert_int_equal(memcmp(a + 30 * MB, b, PG * 3), 0);
	assert_int_equal(memcmp(b + 50 * MB, b + 3 * PG, PG * 2), 0);
	close(fd);
	/* A socket pair: send from far memory, recv into far memory. */
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(send(sv[0], a + 60 * MB, 64 * 1024, 0), 64 * 1024);
	size_t got = 0;
	while (got < 64 * 1024) {
		ssize_t r = recv(sv[1], b + 61 * MB + got, 64 * 1024 - got, 0);
		assert_true(r > 0);
		got += (size_t)r;
	}
	assert_int_equal(memcmp(b + 61 * MB, a + 60 * MB, 64 * 1024), 0);
	close(sv[0]);
	close(sv[1]);
	assert_int_equal(spill_free(ctx, a), 0);
	assert_int_equal(spill_free(ctx, b), 0);
}

/* --- fork -------------------------------------------------------------------- */

static void forked_child_never_sees_far_pages_as_zeros(void **state)
{
	(void)state;
	pager_rearm();
	uint8_t *a = spill_alloc(ctx, REGION);
	fill(a, NPAGES, 2);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		/* Documented behaviour: regions are not inherited. A touch is
		 * SIGSEGV; reading a zero would be the bug. */
		signal(SIGSEGV, SIG_DFL);
		volatile uint8_t v = a[0];
		_exit(v == 0 ? 3 : 4);
	}
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFSIGNALED(st));
	assert_int_equal(WTERMSIG(st), SIGSEGV);
	/* The parent's region is untouched by the child's life. */
	assert_int_equal(bad_pages(a, 0, NPAGES, 2), 0);
	assert_int_equal(spill_free(ctx, a), 0);
}

/* --- free racing faults --------------------------------------------------------- */

struct toucher {
	uint8_t *base;
	atomic_int *stop;
	uint64_t seed;
	int bad;
	long rounds;
};

static void *touch_loop(void *arg)
{
	struct toucher *t = arg;
	while (!atomic_load(t->stop)) {
		t->seed = t->seed * 6364136223846793005ull + 1442695040888963407ull;
		uint32_t p = (uint32_t)(t->seed >> 33) % NPAGES;
		t->bad += !check_page(t->base + (size_t)p * PG, (3ull << 32) | p);
		t->rounds++;
	}
	return NULL;
}

static void free_and_munmap_race_with_faulting_threads(void **state)
{
	(void)state;
	pager_rearm();
	uint8_t *keep = spill_alloc(ctx, REGION);
	fill(keep, NPAGES, 3);
	atomic_int stop = 0;
	struct toucher t[3];
	pthread_t th[3];
	for (int i = 0; i < 3; i++) {
		t[i] = (struct toucher){ keep, &stop, (uint64_t)i + 1, 0, 0 };
		assert_int_equal(pthread_create(&th[i], NULL, touch_loop, &t[i]), 0);
	}
	/* Meanwhile: regions come and go, freed both ways, with remote pages. */
	for (int round = 0; round < 20; round++) {
		uint8_t *tmp = spill_alloc(ctx, 16 * MB);
		assert_non_null(tmp);
		fill(tmp, 16 * MB / PG, 9);
		assert_int_equal(bad_pages(tmp, 0, 64, 9), 0);
		if (round % 2)
			assert_int_equal(spill_free(ctx, tmp), 0);
		else
			assert_int_equal(munmap(tmp, 16 * MB), 0);
	}
	atomic_store(&stop, 1);
	for (int i = 0; i < 3; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(t[i].bad, 0);
		assert_true(t[i].rounds > 0);
	}
	assert_int_equal(bad_pages(keep, 0, NPAGES, 3), 0);
	/* Freed regions gave their server memory back. */
	struct spill_stats st;
	spill_stats(ctx, &st);
	assert_true(st.region_bytes == REGION);
	assert_int_equal(spill_free(ctx, keep), 0);
	/* Freeing twice, or something that is not a region, is an error. */
	assert_int_equal(spill_free(ctx, keep), -1);
	assert_int_equal(errno, EINVAL);
}

/* --- budget --------------------------------------------------------------------- */

static void shrinking_the_budget_evicts_down_to_it(void **state)
{
	(void)state;
	pager_rearm();
	uint8_t *a = spill_alloc(ctx, REGION);
	fill(a, NPAGES, 4);
	struct spill_stats st;
	spill_stats(ctx, &st);
	assert_true(st.resident_bytes > 4 * MB);
	assert_int_equal(spill_set_budget(ctx, 2 * MB), 0);
	spill_stats(ctx, &st);
	assert_true(st.resident_bytes <= 2 * MB);
	assert_int_equal(st.local_budget, 2 * MB);
	assert_int_equal(bad_pages(a, 0, NPAGES, 4), 0);
	spill_stats(ctx, &st);
	assert_true(st.resident_bytes <= 2 * MB + 2 * MB); /* at most a group over */
	assert_int_equal(spill_set_budget(ctx, BUDGET), 0);
	assert_int_equal(spill_set_budget(ctx, 100), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(spill_free(ctx, a), 0);
}

/* Every page resident and none ever evicted: each page took its fault
 * recently, so all are referenced. The first victim pick only gives them
 * their second chance; that must not count as "nothing can go". */
static void shrinking_the_budget_when_nothing_was_ever_evicted(void **state)
{
	(void)state;
	pager_rearm();
	uint8_t *a = spill_alloc(ctx, REGION);
	assert_non_null(a);
	fill(a, NPAGES, 6);
	struct spill_stats st;
	spill_stats(ctx, &st);
	assert_int_equal(st.evictions, 0);
	assert_int_equal(st.resident_bytes, REGION);
	uint64_t writes = st.remote_writes;
	assert_int_equal(spill_set_budget(ctx, 4 * MB), 0);
	spill_stats(ctx, &st);
	assert_true(st.resident_bytes <= 4 * MB);
	assert_true(st.remote_writes >= writes + (REGION - 4 * MB) / PG);
	assert_int_equal(bad_pages(a, 0, NPAGES, 6), 0);
	assert_int_equal(spill_free(ctx, a), 0);
}

/* --- reclaim -------------------------------------------------------------------- */

static sem_t reclaim_done;
static uint64_t reclaim_wanted, reclaim_freed;

static void on_reclaim(spill_ctx *x, uint64_t wanted, uint64_t freed, void *arg)
{
	(void)x;
	(void)arg;
	reclaim_wanted = wanted;
	reclaim_freed = freed;
	sem_post(&reclaim_done);
}

static Spillway__ClientStats *find_client(Spillway__Ctrl *st, const char *name)
{
	for (size_t i = 0; i < st->admin_status_reply->n_clients; i++)
		if (!strcmp(st->admin_status_reply->clients[i]->name, name))
			return st->admin_status_reply->clients[i];
	return NULL;
}

static void reclaim_request_frees_what_it_asked_for(void **state)
{
	(void)state;
	pager_rearm();
	uint8_t *a = spill_alloc(ctx, REGION);
	fill(a, NPAGES, 5);
	/* Room to bring groups back: reclaim can then free their extents. */
	assert_int_equal(spill_set_budget(ctx, 32 * MB), 0);
	sem_init(&reclaim_done, 0, 0);
	assert_int_equal(spill_on_reclaim(ctx, on_reclaim, NULL), 0);

	struct client *admin;
	struct client_opts o = { 0 };
	assert_int_equal(client_connect(server.admin_url, &o, &admin, NULL, 0), 0);
	Spillway__Ctrl *before = admin_status(admin);
	uint64_t used_before = find_client(before, "pager-life")->used_bytes;
	ctrl_free(before);

	Spillway__AdminReclaim ar = SPILLWAY__ADMIN_RECLAIM__INIT;
	ar.name = "pager-life";
	ar.bytes = 8 * MB;
	ar.deadline_ms = 5000;
	Spillway__Ctrl req = SPILLWAY__CTRL__INIT, *rep;
	req.msg_case = SPILLWAY__CTRL__MSG_ADMIN_RECLAIM;
	req.admin_reclaim = &ar;
	assert_int_equal(client_ctrl(admin, &req, &rep, NULL, 0), 0);
	uint64_t id = rep->admin_reclaim_reply->reclaim_id;
	ctrl_free(rep);

	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 30;
	assert_int_equal(sem_timedwait(&reclaim_done, &until), 0);
	assert_int_equal(reclaim_wanted, 8 * MB);
	assert_true(reclaim_freed >= 8 * MB);

	/* The server saw the answer (it follows the callback; bounded wait). */
	Spillway__ClientStats *me = NULL;
	Spillway__Ctrl *after = NULL;
	for (int tries = 0; tries < 100000; tries++) {
		ctrl_free(after);
		after = admin_status(admin);
		me = find_client(after, "pager-life");
		if (me->last_reclaim_id == id)
			break;
	}
	assert_int_equal(me->last_reclaim_id, id);
	assert_int_equal(me->last_reclaim_freed, reclaim_freed);
	assert_true(me->used_bytes + reclaim_freed <= used_before + 2 * MB);
	ctrl_free(after);
	client_close(admin);

	struct spill_stats st;
	spill_stats(ctx, &st);
	assert_true(st.reclaims >= 1);
	/* Nothing was lost giving memory back, nor when the budget shrinks
	 * again and those pages go out once more. */
	assert_int_equal(bad_pages(a, 0, NPAGES, 5), 0);
	assert_int_equal(spill_set_budget(ctx, BUDGET), 0);
	assert_int_equal(bad_pages(a, 0, NPAGES, 5), 0);
	assert_int_equal(spill_free(ctx, a), 0);
}

static int setup(void **state)
{
	(void)state;
	return pager_fixture_open(&server, &ctx, "pager-life", BUDGET);
}

static int teardown(void **state)
{
	(void)state;
	pager_fixture_close(&server, ctx);
	return 0;
}

/* A context whose budget is larger than anything it allocates. */
static int setup_roomy(void **state)
{
	(void)state;
	return pager_fixture_open(&server, &ctx, "pager-life-roomy", REGION + 32 * MB);
}

int main(void)
{
	const struct CMUnitTest roomy[] = {
		cmocka_unit_test(shrinking_the_budget_when_nothing_was_ever_evicted),
	};
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(read_and_write_syscalls_on_far_buffers),
		cmocka_unit_test(forked_child_never_sees_far_pages_as_zeros),
		cmocka_unit_test(free_and_munmap_race_with_faulting_threads),
		cmocka_unit_test(shrinking_the_budget_evicts_down_to_it),
		cmocka_unit_test(reclaim_request_frees_what_it_asked_for),
	};
	int failed = cmocka_run_group_tests(roomy, setup_roomy, teardown);
	return failed + cmocka_run_group_tests(tests, setup, teardown);
}
