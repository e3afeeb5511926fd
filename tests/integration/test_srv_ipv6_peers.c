/* SPDX-License-Identifier: MIT */
/*
 * The per-peer caps key an IPv6 peer by its /64: a host that owns a /64 may
 * connect from any of its 2^64 addresses, so a cap per address would bound
 * nothing. Runs in a network namespace of its own (made here; the server the
 * harness starts inherits it), with three addresses on lo: two in one /64,
 * one in another. Skipped when the namespace cannot be made (not root).
 */
#include <sched.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "srv_raw.h"

#define PORT6 7802 /* a fresh namespace: nothing else listens there */

static struct srv server;

static void one_64_is_one_peer(void **state)
{
	(void)state;
	char listen6[64];
	snprintf(listen6, sizeof(listen6), "tcp://[::1]:%d", PORT6);
	assert_int_equal(srv_start(&server, "--capacity", "16M", "--listen", listen6,
				   "--max-connections-per-peer", "2", "--max-unauthenticated-per-peer",
				   "2", NULL),
			 0);
	int a1 = raw_dial6_from(PORT6, "2001:db8:1::1"), a2 = raw_dial6_from(PORT6, "2001:db8:1::2");
	assert_true(a1 >= 0);
	assert_true(a2 >= 0);
	/* A third address of the same /64 is over the cap of 2... */
	int a3 = raw_dial6_from(PORT6, "2001:db8:1::3");
	assert_true(a3 >= 0);
	assert_int_equal(raw_wait_closed(a3), 0);
	close(a3);
	assert_int_equal(raw_wait_metric_is(&server, "spillway_connections_refused_total{reason=\"per_peer\"}",
					    1, 1),
			 1);
	/* ...another /64 is another peer, and the two held places stay. */
	int b1 = raw_dial6_from(PORT6, "2001:db8:2::1");
	assert_true(b1 >= 0);
	assert_int_equal(raw_wait_metric_is(&server, "spillway_connections_admitted", 3, 1), 3);
	assert_false(raw_closed(a1));
	assert_false(raw_closed(a2));
	assert_false(raw_closed(b1));
	assert_int_equal(srv_metric(&server, "spillway_connections_refused_total{reason=\"per_peer\"}"),
			 1);
	close(a1);
	close(a2);
	close(b1);
	assert_int_equal(srv_stop(&server), 0);
}

int main(void)
{
	if (unshare(CLONE_NEWNET)) {
		printf("skipped: cannot make a network namespace (%s); needs root\n",
		       strerror(errno));
		return 0;
	}
	/* nodad: usable at once, not after duplicate address detection. */
	if (system("ip link set lo up && "
		   "ip -6 addr add 2001:db8:1::1/64 dev lo nodad && "
		   "ip -6 addr add 2001:db8:1::2/64 dev lo nodad && "
		   "ip -6 addr add 2001:db8:1::3/64 dev lo nodad && "
		   "ip -6 addr add 2001:db8:2::1/64 dev lo nodad")) {
		fprintf(stderr, "cannot set up lo in the test's network namespace\n");
		return 1;
	}
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(one_64_is_one_peer),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
