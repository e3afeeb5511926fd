/* SPDX-License-Identifier: MIT */
/*
 * Many identities: 20,000 names left in their grace period are all listed by
 * `spillctl clients` (AdminStatus pages), and registering one more walks
 * none of them (the registry's full-walk counter does not move).
 */
#include <time.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "harness.h"

#define IDENTITIES 20000

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void register_named(const struct srv *s, const char *name)
{
	struct client_opts o = { .name = name, .timeout_ms = 20000 };
	struct client *c;
	char err[256] = "";
	if (client_connect(s->url, &o, &c, err, sizeof(err)))
		fail_msg("register %s: %s", name, err);
	client_close(c);
}

static void twenty_thousand_identities_list_and_stay_cheap(void **state)
{
	(void)state;
	struct srv s = { 0 };
	assert_int_equal(srv_start(&s, "--capacity", "16M", "--grace", "3600", "--max-identities",
				   "30000", "--max-identities-per-key", "30000", NULL),
			 0);
	double t0 = now_s();
	for (int i = 0; i < IDENTITIES; i++) {
		char name[80];
		/* Long names, as a flood would use: 64 characters. */
		snprintf(name, sizeof(name), "id-%05d-%055d", i, 0);
		register_named(&s, name);
	}
	double made = now_s() - t0;
	assert_int_equal(srv_metric(&s, "spillway_clients"), IDENTITIES);

	/* One more Register, and its disconnect, walk no identity. */
	long long walks = srv_metric(&s, "spillway_registry_full_walks_total");
	assert_true(walks >= 0);
	t0 = now_s();
	register_named(&s, "one-more");
	double one = now_s() - t0;
	assert_int_equal(srv_metric(&s, "spillway_registry_full_walks_total"), walks);
	print_message("created %d identities in %.1f s; one more Register took %.2f ms\n",
		      IDENTITIES, made, one * 1000);

	/* Every one of them is listed, in name order. */
	size_t cap = 8u << 20;
	char *out = malloc(cap);
	assert_non_null(out);
	int rc = run_capture(out, cap, SPILLCTL_PATH, "--server", s.url, "clients", "--local",
			     NULL);
	if (rc)
		fail_msg("spillctl clients: exit %d: %s", rc, run_stderr);
	size_t lines = 0, in_order = 0;
	char prev[80] = "";
	for (char *line = out, *nl; (nl = strchr(line, '\n')); line = nl + 1) {
		*nl = '\0';
		lines++;
		if (strncmp(line, "id-", 3))
			continue;
		char name[80];
		sscanf(line, "%79s", name);
		in_order += strcmp(name, prev) > 0;
		snprintf(prev, sizeof(prev), "%s", name);
	}
	assert_int_equal(lines, IDENTITIES + 2); /* the header, and one-more */
	assert_int_equal(in_order, IDENTITIES);
	free(out);
	assert_int_equal(srv_stop(&s), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(twenty_thousand_identities_list_and_stay_cheap),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
