/* SPDX-License-Identifier: MIT */
/*
 * spillctl's cluster commands against a real cluster: one spillwayd with
 * --arbiter and two reporting to it. cluster status sees all three through
 * any member, a drain of an empty server ends at once and shows in status
 * and events, undrain clears it, client set reaches every server, a drain
 * that cannot finish times out, and every command answers --help.
 * The cluster has a clients' key and an admin key (operator commands over
 * TCP need the admin key); spillctl holds the admin key.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "harness.h"

static const char *admin_key; /* the cluster's admin key file */
#define CTL(out, ...) \
	run_capture(out, sizeof(out), SPILLCTL_PATH, "--psk-file", admin_key, __VA_ARGS__, NULL)
#define CTL_NOKEY(out, ...) run_capture(out, sizeof(out), SPILLCTL_PATH, __VA_ARGS__, NULL)
#define OUT_MAX (1 << 16)

/* Poll cond every 20 ms for up to 10 s; true once it holds. */
#define WAIT_UNTIL(cond)                                          \
	({                                                        \
		int ok_ = 0;                                      \
		for (int i_ = 0; i_ < 500 && !(ok_ = (cond)); i_++) \
			usleep(20000);                            \
		ok_;                                              \
	})

struct cluster {
	struct srv arb, b, c;
	struct srv keys;      /* keys.psk_path: the admin key; arb.psk_path: the clients' */
	struct auth_psk psk;  /* the clients' key */
};

static int cluster_up(void **state)
{
	struct cluster *cl = calloc(1, sizeof(*cl));
	if (!cl)
		return -1;
	srv_write_psk(&cl->arb, "cluster-ctl-clients-key-0123456789");
	srv_write_psk(&cl->keys, "cluster-ctl-admin-key-9876543210");
	admin_key = cl->keys.psk_path;
	const char *k = cl->arb.psk_path;
	if (auth_psk_load(k, &cl->psk) ||
	    srv_start(&cl->arb, "--capacity", "16M", "--arbiter", "--psk-file", k,
		      "--admin-psk-file", admin_key, NULL))
		return -1;
	if (srv_start(&cl->b, "--capacity", "16M", "--arbiter-url", cl->arb.url,
		      "--report-interval-ms", "100", "--psk-file", k, "--admin-psk-file", admin_key,
		      NULL) ||
	    srv_start(&cl->c, "--capacity", "16M", "--arbiter-url", cl->arb.url,
		      "--report-interval-ms", "100", "--psk-file", k, "--admin-psk-file", admin_key,
		      NULL))
		return -1;
	*state = cl;
	return 0;
}

static int cluster_down(void **state)
{
	struct cluster *cl = *state;
	if (cl) {
		srv_stop(&cl->c);
		srv_stop(&cl->b);
		srv_stop(&cl->arb);
		unlink(cl->arb.psk_path);
		unlink(cl->keys.psk_path);
		free(cl);
	}
	return 0;
}

static int count(const char *s, const char *what)
{
	int n = 0;
	for (; (s = strstr(s, what)); s += strlen(what))
		n++;
	return n;
}

/* The server object for url in a cluster status --json, cut at its node
 * list (written into buf): "" when absent. */
static const char *server_obj(const char *out, const char *url, char *buf, size_t cap)
{
	char key[128];
	snprintf(key, sizeof(key), "{\"url\":\"%s\"", url);
	const char *p = strstr(out, key), *end = p ? strstr(p, "\"nodes\"") : NULL;
	size_t len = end ? (size_t)(end - p) : 0;
	if (len >= cap)
		len = cap - 1;
	memcpy(buf, p ? p : "", len);
	buf[len] = '\0';
	return buf;
}

/* cluster status --json through server via, and url's object in it. */
static const char *status_of(const struct srv *via, const char *url, char *buf, size_t cap)
{
	static char out[OUT_MAX];
	if (CTL(out, "--server", via->url, "cluster", "status", "--json"))
		out[0] = '\0';
	return server_obj(out, url, buf, cap);
}

static int all_up(const struct cluster *cl)
{
	static char out[OUT_MAX];
	return CTL(out, "--server", cl->b.url, "--json", "cluster", "status") == 0 &&
	       count(out, "\"up\":true") == 3;
}

static int is_draining(const struct cluster *cl, const struct srv *s, int want)
{
	char obj[1024];
	status_of(&cl->arb, s->url, obj, sizeof(obj));
	return strstr(obj, want ? "\"draining\":true" : "\"draining\":false") != NULL;
}

/* Every line a JSON object of an event; and one is a drain of url. */
static int events_have_drain(const struct cluster *cl, const char *url)
{
	static char out[OUT_MAX];
	char want[128];
	snprintf(want, sizeof(want), "\"kind\":\"drain\",\"client\":\"\",\"server\":\"%s\"", url);
	if (CTL(out, "--server", cl->c.url, "events", "--json"))
		return 0;
	int found = 0;
	for (char *line = out; *line;) {
		char *nl = strchr(line, '\n');
		assert_non_null(nl); /* JSON lines: each ends with a newline */
		*nl = '\0';
		assert_true(!strncmp(line, "{\"seq\":", 7) && nl[-1] == '}');
		found |= strstr(line, want) != NULL;
		line = nl + 1;
	}
	return found;
}

static void status_lists_every_server_through_any_member(void **state)
{
	struct cluster *cl = *state;
	assert_true(WAIT_UNTIL(all_up(cl)));
	char out[OUT_MAX], obj[1024];
	assert_int_equal(CTL(out, "--server", cl->c.url, "cluster", "status", "--json"), 0);
	const struct srv *all[] = { &cl->arb, &cl->b, &cl->c };
	for (int i = 0; i < 3; i++) {
		server_obj(out, all[i]->url, obj, sizeof(obj));
		assert_non_null(strstr(obj, "\"up\":true"));
		assert_non_null(strstr(obj, "\"capacity_bytes\":16777216"));
	}
	assert_non_null(strstr(server_obj(out, cl->arb.url, obj, sizeof(obj)), "\"arbiter\":true"));
	assert_non_null(strstr(out, "\"high_pct\":90,\"low_pct\":80,\"cluster_full\":false"));
	/* The human table names each server. */
	assert_int_equal(CTL(out, "--server", cl->b.url, "cluster", "status"), 0);
	for (int i = 0; i < 3; i++)
		assert_non_null(strstr(out, all[i]->url));
}

static void drain_of_empty_server_ends_at_once_and_shows(void **state)
{
	struct cluster *cl = *state;
	char out[OUT_MAX];
	assert_int_equal(CTL(out, "--server", cl->arb.url, "server", "drain", cl->c.url, "--json"), 0);
	char *last = strrchr(out, '{');
	assert_non_null(last);
	assert_non_null(strstr(last, "\"drained\":true,\"used_bytes\":0"));
	assert_true(WAIT_UNTIL(is_draining(cl, &cl->c, 1)));
	assert_true(WAIT_UNTIL(events_have_drain(cl, cl->c.url)));

	assert_int_equal(CTL(out, "--json", "server", "undrain", cl->c.url), 0);
	assert_non_null(strstr(out, "\"draining\":false"));
	assert_true(WAIT_UNTIL(is_draining(cl, &cl->c, 0)));
}

static void drain_that_cannot_finish_times_out(void **state)
{
	struct cluster *cl = *state;
	/* A bare client holds an extent and never moves it. */
	struct client *holder = connect_as(&cl->b, "holder", &cl->psk);
	struct client_extent e;
	assert_int_equal(client_alloc_extents(holder, 1, -1, &e), 0);
	char out[OUT_MAX];
	assert_int_equal(CTL(out, "--json", "server", "drain", cl->b.url, "--timeout", "1"), 1);
	assert_non_null(strstr(run_stderr, "not drained after 1s"));
	assert_non_null(strstr(strrchr(out, '{'), "\"drained\":false,\"used_bytes\":2097152"));
	assert_int_equal(CTL(out, "server", "undrain", cl->b.url), 0);
	client_close(holder);
}

static void client_set_reaches_every_server(void **state)
{
	struct cluster *cl = *state;
	assert_true(WAIT_UNTIL(all_up(cl)));
	char out[OUT_MAX];
	assert_int_equal(CTL(out, "--server", cl->b.url, "--json", "client", "set", "tenant",
			     "--limit", "8M"), 0);
	assert_int_equal(count(out, "\"ok\":true"), 3);
	assert_int_equal(count(out, "\"limit_bytes\":8388608"), 3);
	/* The reservation cannot fit anywhere: every server refuses, exit 1. */
	assert_int_equal(CTL(out, "--server", cl->b.url, "client", "set", "tenant",
			     "--reservation", "1G"), 1);
	assert_int_equal(count(out, "error:"), 3);
	assert_non_null(strstr(run_stderr, "failed on 3 of 3 servers"));
}

static void clients_come_from_the_arbiter(void **state)
{
	struct cluster *cl = *state;
	struct client *a = connect_as(&cl->b, "spread", &cl->psk);
	struct client *b = connect_as(&cl->c, "spread", &cl->psk);
	struct client_extent e;
	assert_int_equal(client_alloc_extents(a, 1, -1, &e), 0);
	assert_int_equal(client_alloc_extents(b, 1, -1, &e), 0);
	char out[OUT_MAX];
	/* Cluster totals once both servers have reported. */
	assert_true(WAIT_UNTIL(CTL(out, "--server", cl->c.url, "--json", "clients") == 0 &&
			       strstr(out, "\"name\":\"spread\"") &&
			       strstr(out, "\"used_bytes\":4194304,\"pending_bytes\":0") &&
			       strstr(out, "\"servers\":2}")));
	/* --local: this server's view alone. */
	assert_int_equal(CTL(out, "--server", cl->c.url, "--json", "clients", "--local"), 0);
	assert_non_null(strstr(out, "\"name\":\"spread\",\"client_id\""));
	assert_non_null(strstr(out, "\"used_bytes\":2097152"));
	client_close(b);
	client_close(a);
}

static void without_an_arbiter_status_says_so(void **state)
{
	(void)state;
	struct srv s = { 0 };
	assert_int_equal(srv_start(&s, "--capacity", "16M", NULL), 0);
	char out[OUT_MAX];
	assert_int_equal(CTL_NOKEY(out, "--server", s.url, "cluster", "status", "--json"), 0);
	assert_non_null(strstr(out, "{\"arbiter_url\":\"\""));
	assert_int_equal(CTL_NOKEY(out, "--server", s.url, "cluster", "status"), 0);
	assert_non_null(strstr(out, "arbiter    none"));
	assert_int_equal(CTL_NOKEY(out, "--server", s.url, "events"), 1);
	assert_non_null(strstr(run_stderr, "knows no arbiter"));
	/* clients and client set: the single-server output as before. */
	assert_int_equal(CTL_NOKEY(out, "--server", s.url, "clients"), 0);
	assert_non_null(strstr(out, "EXTENTS CONNS  STATE"));
	assert_int_equal(CTL_NOKEY(out, "--server", s.admin_url, "--json", "client", "set", "x", "--limit",
				   "8M"),
			 0);
	assert_non_null(strstr(out, "{\"name\":\"x\",\"client_id\":0"));
	assert_int_equal(srv_stop(&s), 0);
}

static void every_command_answers_help(void **state)
{
	(void)state;
	static const char *const cmds[][3] = {
		{ "--help" },
		{ "status", "--help" },
		{ "clients", "--help" },
		{ "client", "set", "--help" },
		{ "client", "reclaim", "--help" },
		{ "cluster", "status", "--help" },
		{ "cluster", "--help" },
		{ "events", "--help" },
		{ "server", "drain", "--help" },
		{ "server", "undrain", "--help" },
		{ "server", "--help" },
		{ "swap", "--help" },
		{ "export", "--help" },
	};
	char out[OUT_MAX];
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		assert_int_equal(run_capture(out, sizeof(out), SPILLCTL_PATH, cmds[i][0], cmds[i][1],
					     cmds[i][2], NULL), 0);
		assert_true(strlen(out) > 0);
		assert_string_equal(run_stderr, "");
	}
	assert_int_equal(CTL_NOKEY(out, "--help"), 0);
	const char *const listed[] = { "cluster status", "clients [--local]", "client set NAME",
				       "events [--follow]", "server drain URL", "server undrain URL" };
	for (size_t i = 0; i < sizeof(listed) / sizeof(listed[0]); i++)
		assert_non_null(strstr(out, listed[i]));
}

int main(void)
{
	const struct CMUnitTest cluster[] = {
		cmocka_unit_test(status_lists_every_server_through_any_member),
		cmocka_unit_test(drain_of_empty_server_ends_at_once_and_shows),
		cmocka_unit_test(drain_that_cannot_finish_times_out),
		cmocka_unit_test(client_set_reaches_every_server),
		cmocka_unit_test(clients_come_from_the_arbiter),
	};
	const struct CMUnitTest alone[] = {
		cmocka_unit_test(without_an_arbiter_status_says_so),
		cmocka_unit_test(every_command_answers_help),
	};
	int failed = cmocka_run_group_tests(cluster, cluster_up, cluster_down);
	return failed + cmocka_run_group_tests(alone, NULL, NULL);
}
