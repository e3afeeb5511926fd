/* SPDX-License-Identifier: MIT */
/*
 * Review test: --frame-buffer-per-client bounds one identity, but
 * identities are free to make (one key may hold --max-identities-per-key,
 * 4096 by default). A hog that registers a second identity holds the whole
 * --frame-buffer-max with frames it never finishes: the first identity
 * takes half (the share does not bind below half the budget), the second
 * its share of the rest. Another tenant's 128 KiB WRITE then waits until
 * --frame-stall-timeout closes the hog's connections (10 s by default,
 * past libspillway's 5 s request timeout: the victim declares the server
 * down), and the hog simply reconnects.
 *
 * The same setup as test_srv_write_hostile case 1 (4M budget, 1 MiB
 * control frames never finished), with the hog's four connections split
 * over two identities. The honest WRITE must succeed within its 3 s
 * request timeout.
 */
#include <poll.h>
#include <sys/socket.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "frame.h"
#include "harness.h"
#include "srv_raw.h"

#define BOUND_MS 20000 /* only there to fail instead of hanging */
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
#define CLIENT_MS 6000
#else
#define CLIENT_MS 3000
#endif
#define HOG_CONNS 4      /* 1 MiB each: the whole budget below */
#define HONEST_PAGES 32  /* 128 KiB: beyond the 64 KiB stage */

static struct srv server;

static struct client *open_as(const char *name, const uint8_t *token, int timeout_ms)
{
	struct client_opts o = { .name = name, .token = token, .timeout_ms = timeout_ms };
	struct client *c = NULL;
	int rc = client_connect(server.url, &o, &c, NULL, 0);
	if (rc)
		fail_msg("connect as %s: %d", name, rc);
	return c;
}

static void two_identities_of_one_hog_starve_another_tenant(void **state)
{
	(void)state;
	assert_int_equal(srv_start(&server, "--capacity", "64M", "--workers", "1",
				   "--frame-buffer-max", "4M", NULL), 0);
	struct client *hog[HOG_CONNS];
	hog[0] = open_as("hog-a", NULL, BOUND_MS);
	hog[1] = open_as("hog-a", client_token(hog[0]), BOUND_MS);
	hog[2] = open_as("hog-b", NULL, BOUND_MS);
	hog[3] = open_as("hog-b", client_token(hog[2]), BOUND_MS);
	for (int i = 0; i < HOG_CONNS; i++) {
		int fd = client_fd(hog[i]);
		raw_send_header(fd, SPILL_OP_CTRL, SPILL_MAX_CTRL_PAYLOAD, 0);
		uint8_t some[4096] = { 0 };
		assert_int_equal(send(fd, some, sizeof(some), MSG_NOSIGNAL), (ssize_t)sizeof(some));
	}
	/* Every frame got its buffer: the budget is all the hog's. */
	assert_true(raw_wait_metric(&server, "spillway_frame_buffer_bytes",
				    4ll * SPILL_MAX_CTRL_PAYLOAD) >= 4ll * SPILL_MAX_CTRL_PAYLOAD);

	struct client *honest = open_as("honest", NULL, CLIENT_MS);
	struct client_extent e;
	assert_int_equal(client_alloc_extents(honest, 1, -1, &e), 0);
	uint8_t *buf = malloc((size_t)HONEST_PAGES * SPILL_PAGE_SIZE);
	for (int i = 0; i < HONEST_PAGES; i++)
		fill_page(buf + (size_t)i * SPILL_PAGE_SIZE, 4200 + (uint64_t)i);
	int rc = client_write(honest, e.id, 0, HONEST_PAGES, buf);
	print_message("honest 128 KiB WRITE with the hog on two identities: %d; waits %lld\n",
		      rc, srv_metric(&server, "spillway_frame_buffer_waits_total"));
	client_close(honest);
	for (int i = 0; i < HOG_CONNS; i++)
		client_close(hog[i]);
	free(buf);
	assert_int_equal(srv_stop(&server), 0);
	assert_int_equal(rc, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(two_identities_of_one_hog_starve_another_tenant),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
