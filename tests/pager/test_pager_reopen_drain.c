/* SPDX-License-Identifier: MIT */
/*
 * A server the pager re-opens (client/pager/service.c reopen_servers) does
 * not keep the "draining" flag it had before it went down: a drained server
 * that an operator restarts (or undrains while the pager was cut off from
 * it) sends no Drain{0}, and registering again it says Drain{1} only if it
 * still drains. Otherwise the pager would never place a new extent on it.
 *
 * Replicas 1, servers A and B. Everything is written once (B holds some);
 * B is drained and the pager empties it; B is killed and a new, empty,
 * undrained spillwayd started on its port; the pager re-opens it (listed
 * on B, both up). A second region is then written and evicted: it must
 * land on B too (B is the emptier of two servers, and the choice goes to
 * free capacity).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "harness.h"
#include "pager_test.h"
#include "spillway.h"

#define PG 4096u
#define MB (1024u * 1024u)
#define BUDGET (1 * MB)
#define REGION (16 * MB) /* eight 2 MiB groups */
#define NAME "pager-review-reopen"
#define BOUND_MS 20000   /* only there to fail instead of hanging */

static uint64_t mono(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000u + (uint64_t)t.tv_nsec / 1000000u;
}

static void pace(void)
{
	struct timespec ts = { 0, 20 * 1000000 }; /* pacing a bounded poll */
	nanosleep(&ts, NULL);
}

/* Bytes the identity called NAME uses on s; -1 when s lists no such client. */
static int64_t used_on(const struct srv *s)
{
	struct client *c = connect_as(s, NULL, NULL);
	Spillway__Ctrl *rep = admin_status(c);
	int64_t used = -1;
	const Spillway__AdminStatusReply *r = rep->admin_status_reply;
	for (size_t i = 0; i < r->n_clients; i++)
		if (!strcmp(r->clients[i]->name, NAME))
			used = (int64_t)r->clients[i]->used_bytes;
	ctrl_free(rep);
	client_close(c);
	return used;
}

static void admin_drain(const struct srv *s, int on)
{
	struct client *c = connect_to(s->admin_url, NULL, NULL);
	Spillway__AdminDrain d = SPILLWAY__ADMIN_DRAIN__INIT;
	Spillway__Ctrl req = SPILLWAY__CTRL__INIT, *rep = NULL;
	d.drain = on;
	req.msg_case = SPILLWAY__CTRL__MSG_ADMIN_DRAIN;
	req.admin_drain = &d;
	char err[256] = "";
	if (client_ctrl(c, &req, &rep, err, sizeof(err)))
		fail_msg("AdminDrain on %s: %s", s->url, err);
	ctrl_free(rep);
	client_close(c);
}

static void write_all(uint8_t *base, uint32_t gen)
{
	for (uint32_t p = 0; p < REGION / PG; p++)
		fill_page(base + (size_t)p * PG, seed_of(p, gen));
}

static void restarted_drained_server_takes_pages_again(void **state)
{
	(void)state;
	struct srv a, b;
	assert_int_equal(srv_start(&a, "--capacity", "256M", NULL), 0);
	assert_int_equal(srv_start(&b, "--capacity", "256M", NULL), 0);
	struct spill_config cfg = { .servers = { a.url, b.url }, .local_budget = BUDGET,
				    .replicas = 1, .name = NAME, .timeout_ms = 1000 };
	spill_ctx *ctx = spill_open(&cfg);
	if (!ctx)
		fail_msg("spill_open: %s", spill_strerror(errno));
	pager_save_handler();
	uint8_t *r1 = spill_alloc(ctx, REGION);
	assert_non_null(r1);
	write_all(r1, 1);
	assert_true(used_on(&b) > 0);

	/* Drained: the pager moves B's groups to A. */
	admin_drain(&b, 1);
	int64_t used = 1;
	for (uint64_t end = mono() + BOUND_MS; mono() < end && used != 0; pace())
		used = used_on(&b);
	assert_int_equal(used, 0);

	/* Restarted empty and not draining; the pager re-opens it. */
	int port = b.port;
	srv_kill(&b);
	srv_next_port = port;
	assert_int_equal(srv_start(&b, "--capacity", "256M", NULL), 0);
	assert_int_equal(b.port, port);
	struct spill_stats st = { 0 };
	int back = 0;
	for (uint64_t end = mono() + BOUND_MS; mono() < end && !back; pace()) {
		spill_stats(ctx, &st);
		back = used_on(&b) >= 0 && st.servers_up == 2;
	}
	assert_true(back);

	/* New groups: B, empty, is the first choice. */
	uint8_t *r2 = spill_alloc(ctx, REGION);
	assert_non_null(r2);
	write_all(r2, 2);
	used = used_on(&b);
	if (used <= 0)
		fail_msg("restarted, undrained B took none of 8 new groups (A uses %lld bytes)",
			 (long long)used_on(&a));
	spill_close(ctx);
	srv_stop(&a);
	srv_stop(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(restarted_drained_server_takes_pages_again),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
