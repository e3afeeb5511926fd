/* SPDX-License-Identifier: MIT */
/*
 * Losing servers. With replicas 2 over three servers, kill -9 one in the
 * middle of a random read/write run: every byte still verifies, reads fail
 * over, and the library copies the lost replicas to the third server. With
 * replicas 1, killing the only server makes the next touch of a remote page
 * SIGBUS (in a child process), never a zero.
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

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

static void kill_one_of_three_with_two_replicas(void **state)
{
	(void)state;
	struct srv s[3];
	for (int i = 0; i < 3; i++)
		assert_int_equal(srv_start(&s[i], "--capacity", "256M", NULL), 0);
	struct spill_config cfg = { .servers = { s[0].url, s[1].url, s[2].url },
				    .local_budget = BUDGET, .replicas = 2, .name = "pager-rep" };
	spill_ctx *ctx = spill_open(&cfg);
	assert_non_null(ctx);
	pager_save_handler();
	uint8_t *base = spill_alloc(ctx, REGION);
	_Atomic uint32_t *gen = calloc(NPAGES, sizeof(*gen));
	for (uint32_t p = 0; p < NPAGES; p++) {
		fill_page(base + (size_t)p * PG, seed_of(p, 1));
		gen[p] = 1;
	}
	atomic_int phase = 0;
	atomic_long ops = 0;
	struct runner r[2];
	pthread_t t[2];
	for (int i = 0; i < 2; i++) {
		r[i] = (struct runner){ base, gen, (uint32_t)i * NPAGES / 2, NPAGES / 2,
					(uint64_t)i + 7, &phase, &ops, 0 };
		assert_int_equal(pthread_create(&t[i], NULL, random_rw, &r[i]), 0);
	}
	/* Mid-run: wait for real progress, kill one server, then more work. */
	while (atomic_load(&ops) < 5000)
		sched_yield();
	srv_kill(&s[1]);
	long at_kill = atomic_load(&ops);
	while (atomic_load(&ops) < at_kill + 20000)
		sched_yield();
	atomic_store(&phase, 1);
	for (int i = 0; i < 2; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(r[i].bad, 0);
	}
	int bad = 0;
	for (uint32_t p = 0; p < NPAGES; p++)
		bad += !check_page(base + (size_t)p * PG, seed_of(p, gen[p]));
	assert_int_equal(bad, 0);
	struct spill_stats st;
	spill_stats(ctx, &st);
	assert_int_equal(st.servers_up, 2);
	assert_int_equal(st.lost_pages, 0);
	/* The survivors hold both copies again (the service thread copies in
	 * the background; by now it has had its wake-up). Bounded wait. */
	for (int i = 0; i < 2000000 && st.rereplicated == 0; i++) {
		sched_yield();
		spill_stats(ctx, &st);
	}
	assert_true(st.rereplicated > 0);
	assert_int_equal(spill_free(ctx, base), 0);
	spill_close(ctx);
	free(gen);
	srv_stop(&s[0]);
	srv_stop(&s[2]);
}

static void losing_the_only_copy_raises_sigbus_not_zeros(void **state)
{
	(void)state;
	struct srv s;
	assert_int_equal(srv_start(&s, "--capacity", "256M", NULL), 0);
	int ready[2], go[2];
	assert_int_equal(pipe(ready), 0);
	assert_int_equal(pipe(go), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		/* A program's own disposition, not cmocka's test-runner handler. */
		signal(SIGBUS, SIG_DFL);
		struct spill_config cfg = { .servers = { s.url }, .local_budget = BUDGET,
					    .name = "pager-lose", .timeout_ms = 2000 };
		spill_ctx *ctx = spill_open(&cfg);
		if (!ctx)
			_exit(10);
		uint8_t *base = spill_alloc(ctx, REGION);
		for (uint32_t p = 0; p < NPAGES; p++)
			fill_page(base + (size_t)p * PG, seed_of(p, 1));
		char c = 'r';
		if (write(ready[1], &c, 1) != 1 || read(go[0], &c, 1) != 1)
			_exit(11);
		/* Page 0 was evicted long ago; its only copy is gone. */
		volatile uint8_t v = base[0];
		int zero = 1;
		for (unsigned i = 0; i < PG; i++)
			zero &= base[i] == 0;
		_exit(zero ? 3 : (v ? 4 : 5));
	}
	char c;
	assert_int_equal(read(ready[0], &c, 1), 1);
	srv_kill(&s);
	assert_int_equal(write(go[1], &c, 1), 1);
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	if (WIFEXITED(st))
		fail_msg("child exited %d instead of dying of SIGBUS", WEXITSTATUS(st));
	assert_true(WIFSIGNALED(st));
	assert_int_equal(WTERMSIG(st), SIGBUS);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(kill_one_of_three_with_two_replicas),
		cmocka_unit_test(losing_the_only_copy_raises_sigbus_not_zeros),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
