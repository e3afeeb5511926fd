/* SPDX-License-Identifier: MIT */
/*
 * Register policy: a session with the clients' key gets no reservation,
 * priority or limit beyond the server's defaults unless an operator quota
 * says so; identities are capped per key and in total (grace included);
 * names nbd:* belong to exports; someone else's extent looks missing, and
 * extent ids cannot be guessed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "auth.h"
#include "harness.h"

#define MB (1ull << 20)

/* A server with a clients' key and an operator key. */
struct keyed {
	struct srv s, admin_file;
	struct auth_psk key, admin;
};

static void keyed_start(struct keyed *k, ...)
{
	srv_write_psk(&k->s, "the clients' key for policy tests");
	srv_write_psk(&k->admin_file, "the operators' key for policy tests");
	assert_int_equal(auth_psk_load(k->s.psk_path, &k->key), 0);
	assert_int_equal(auth_psk_load(k->admin_file.psk_path, &k->admin), 0);
	const char *argv[24];
	int n = 0;
	argv[n++] = "--psk-file";
	argv[n++] = k->s.psk_path;
	argv[n++] = "--admin-psk-file";
	argv[n++] = k->admin_file.psk_path;
	va_list ap;
	va_start(ap, k);
	const char *a;
	while ((a = va_arg(ap, const char *)) && n < 23)
		argv[n++] = a;
	va_end(ap);
	while (n < 23)
		argv[n++] = NULL;
	argv[23] = NULL;
	assert_int_equal(srv_start(&k->s, argv[0], argv[1], argv[2], argv[3], argv[4], argv[5],
				   argv[6], argv[7], argv[8], argv[9], argv[10], argv[11], argv[12],
				   argv[13], argv[14], argv[15], argv[16], argv[17], argv[18],
				   argv[19], argv[20], argv[21], argv[22], NULL),
			 0);
}

static void keyed_stop(struct keyed *k)
{
	assert_int_equal(srv_stop(&k->s), 0);
	unlink(k->s.psk_path);
	unlink(k->admin_file.psk_path);
}

/* Register name with what it asks; 0 or -errno, why in err. */
static int try_register(const struct srv *s, const struct auth_psk *psk, const char *name,
			int priority, uint64_t reservation, uint64_t limit, struct client **out,
			char *err, size_t cap)
{
	struct client_opts o = { .psk = psk, .name = name, .priority = priority,
				 .reservation = reservation, .limit = limit, .timeout_ms = 20000 };
	*out = NULL;
	return client_connect(s->url, &o, out, err, cap);
}

/* An operator session with no identity of its own. */
static struct client *operator_session(const struct keyed *k)
{
	struct client_opts o = { .psk = &k->admin, .timeout_ms = 20000 };
	struct client *c;
	assert_int_equal(client_connect(k->s.url, &o, &c, NULL, 0), 0);
	return c;
}

/* What the server holds for name (first status page), or the test fails. */
static void quota_of(struct client *op, const char *name, int *prio, uint64_t *res,
		     uint64_t *limit)
{
	Spillway__Ctrl *rep = admin_status(op);
	const Spillway__AdminStatusReply *r = rep->admin_status_reply;
	size_t i = 0;
	while (i < r->n_clients && strcmp(r->clients[i]->name, name))
		i++;
	if (i == r->n_clients)
		fail_msg("no identity '%s' on the server", name);
	*prio = r->clients[i]->priority;
	*res = r->clients[i]->reservation_bytes;
	*limit = r->clients[i]->limit_bytes;
	ctrl_free(rep);
}

static void a_client_key_grants_itself_only_the_defaults(void **state)
{
	(void)state;
	struct keyed k = { 0 };
	keyed_start(&k, "--capacity", "64M", "--default-reservation", "4M", "--default-limit",
		    "32M", NULL);
	char err[256];
	/* Almost the whole pool, never a victim, no limit: clamped. */
	struct client *greedy;
	assert_int_equal(try_register(&k.s, &k.key, "greedy", -1000, 60 * MB, 0, &greedy, err,
				      sizeof(err)),
			 0);
	struct client *op = operator_session(&k);
	int prio;
	uint64_t res, limit;
	quota_of(op, "greedy", &prio, &res, &limit);
	assert_int_equal(prio, 0);
	assert_int_equal(res, 4 * MB);
	assert_int_equal(limit, 32 * MB);
	/* Less than the defaults is granted as asked. */
	struct client *modest;
	assert_int_equal(try_register(&k.s, &k.key, "modest", 100, 2 * MB, 8 * MB, &modest, err,
				      sizeof(err)),
			 0);
	quota_of(op, "modest", &prio, &res, &limit);
	assert_int_equal(prio, 100);
	assert_int_equal(res, 2 * MB);
	assert_int_equal(limit, 8 * MB);
	assert_int_equal(srv_metric(&k.s, "spillway_register_clamped_total{field=\"reservation\"}"), 1);
	assert_int_equal(srv_metric(&k.s, "spillway_register_clamped_total{field=\"priority\"}"), 1);
	assert_int_equal(srv_metric(&k.s, "spillway_register_clamped_total{field=\"limit\"}"), 1);

	/* An operator quota is what allows more (the swap helper's -1000). */
	char out[4096];
	assert_int_equal(run_capture(out, sizeof(out), SPILLCTL_PATH, "--server", k.s.url,
				     "--psk-file", k.admin_file.psk_path, "client", "set", "swap.h",
				     "--priority", "-1000", "--reservation", "16M", NULL),
			 0);
	struct client *swap;
	assert_int_equal(try_register(&k.s, &k.key, "swap.h", -1000, 0, 0, &swap, err,
				      sizeof(err)),
			 0);
	quota_of(op, "swap.h", &prio, &res, &limit);
	assert_int_equal(prio, -1000);
	assert_int_equal(res, 16 * MB);

	/* And an honest client still finds the pool it was promised. */
	struct client *honest;
	assert_int_equal(try_register(&k.s, &k.key, "honest", 0, 0, 0, &honest, err, sizeof(err)),
			 0);
	struct client_extent e[16];
	assert_int_equal(client_alloc_extents(honest, 16, -1, e), 0);

	client_close(honest);
	client_close(swap);
	client_close(modest);
	client_close(greedy);
	client_close(op);
	keyed_stop(&k);
}

static void identities_are_capped_per_key_and_in_total(void **state)
{
	(void)state;
	struct keyed k = { 0 };
	keyed_start(&k, "--capacity", "16M", "--grace", "600", "--max-identities-per-key", "3",
		    "--max-identities", "5", NULL);
	char err[256];
	struct client *c;
	const uint8_t *token = NULL;
	uint8_t kept[CTRL_TOKEN_BYTES];
	/* Three names under the clients' key, each left in its grace period. */
	for (int i = 0; i < 3; i++) {
		char name[16];
		snprintf(name, sizeof(name), "tenant%d", i);
		assert_int_equal(try_register(&k.s, &k.key, name, 0, 0, 0, &c, err, sizeof(err)), 0);
		if (i == 0) {
			token = client_token(c);
			memcpy(kept, token, sizeof(kept));
		}
		client_close(c);
	}
	assert_int_equal(try_register(&k.s, &k.key, "tenant3", 0, 0, 0, &c, err, sizeof(err)),
			 -EDQUOT);
	assert_non_null(strstr(err, "too many identities for this key"));
	/* The operator's key counts on its own, up to the server's total. */
	for (int i = 0; i < 2; i++) {
		char name[16];
		snprintf(name, sizeof(name), "ops%d", i);
		assert_int_equal(try_register(&k.s, &k.admin, name, 0, 0, 0, &c, err, sizeof(err)), 0);
		client_close(c);
	}
	assert_int_equal(try_register(&k.s, &k.admin, "ops2", 0, 0, 0, &c, err, sizeof(err)),
			 -EDQUOT);
	assert_non_null(strstr(err, "too many identities on this server"));
	/* A known identity comes back with its token: no new identity. */
	struct client_opts o = { .psk = &k.key, .name = "tenant0", .token = kept,
				 .timeout_ms = 20000 };
	assert_int_equal(client_connect(k.s.url, &o, &c, err, sizeof(err)), 0);
	assert_true(client_resumed(c));
	client_close(c);
	assert_int_equal(srv_metric(&k.s, "spillway_register_refused_total{reason=\"identities_per_key\"}"), 1);
	assert_int_equal(srv_metric(&k.s, "spillway_register_refused_total{reason=\"identities_total\"}"), 1);
	assert_int_equal(srv_metric(&k.s, "spillway_clients"), 5);
	assert_int_equal(srv_metric(&k.s, "spillway_identities{key=\"client\"}"), 3);
	assert_int_equal(srv_metric(&k.s, "spillway_identities{key=\"operator\"}"), 2);
	keyed_stop(&k);
}

static void nbd_names_belong_to_exports(void **state)
{
	(void)state;
	struct keyed k = { 0 };
	srv_write_config(&k.s, "[export disk]\nsize = 4M\n");
	keyed_start(&k, "--capacity", "16M", "--nbd", "127.0.0.1:0", "--config", k.s.config_path,
		    NULL);
	char err[256];
	struct client *c;
	assert_int_equal(try_register(&k.s, &k.key, "nbd:later", 0, 0, 0, &c, err, sizeof(err)),
			 -EPERM);
	assert_non_null(strstr(err, "belong to NBD exports"));
	assert_int_equal(try_register(&k.s, &k.admin, "nbd:disk", 0, 0, 0, &c, err, sizeof(err)),
			 -EPERM);
	assert_int_equal(srv_metric(&k.s, "spillway_register_refused_total{reason=\"export_name\"}"), 2);
	/* The export's own identity is there. */
	struct client *op = operator_session(&k);
	int prio;
	uint64_t res, limit;
	quota_of(op, "nbd:disk", &prio, &res, &limit);
	client_close(op);
	keyed_stop(&k);
	unlink(k.s.config_path);
}

static void not_yours_and_missing_look_the_same(void **state)
{
	(void)state;
	struct srv s = { 0 };
	assert_int_equal(srv_start(&s, "--capacity", "64M", NULL), 0);
	struct client *a = connect_as(&s, "a", NULL);
	struct client *b = connect_as(&s, "b", NULL);
	struct client_extent eb[8];
	assert_int_equal(client_alloc_extents(b, 8, -1, eb), 0);
	uint8_t page[SPILL_PAGE_SIZE];
	fill_page(page, 1);
	assert_int_equal(client_write(b, eb[0].id, 0, 1, page), 0);

	/* One answer for both, on every operation. */
	uint64_t missing = eb[0].id ^ 0x5a5a5a5a5a5a5a5aull;
	int rc_other = client_read(a, eb[0].id, 0, 1, page, NULL);
	assert_int_equal(rc_other, client_read(a, missing, 0, 1, page, NULL));
	assert_int_equal(rc_other, -ENOENT);
	assert_int_equal(client_write(a, eb[0].id, 0, 1, page), client_write(a, missing, 0, 1, page));
	assert_int_equal(client_invalidate(a, eb[0].id, 0, 1), client_invalidate(a, missing, 0, 1));

	/* Ids do not follow one another: no neighbour to guess. */
	int sequential = 0;
	for (int i = 1; i < 8; i++)
		sequential += eb[i].id == eb[i - 1].id + 1 || eb[i].id + 1 == eb[i - 1].id;
	assert_int_equal(sequential, 0);
	client_close(a);
	client_close(b);
	assert_int_equal(srv_stop(&s), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(a_client_key_grants_itself_only_the_defaults),
		cmocka_unit_test(identities_are_capped_per_key_and_in_total),
		cmocka_unit_test(nbd_names_belong_to_exports),
		cmocka_unit_test(not_yours_and_missing_look_the_same),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
