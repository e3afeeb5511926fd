/* SPDX-License-Identifier: MIT */
/*
 * libspillway with a key stores pages only on a server that proves it holds
 * that key: a server that asks for no authentication (an impostor would say
 * just that) is refused at spill_open, while one with the key works.
 */
#include <string.h>
#include <sys/stat.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "harness.h"
#include "pager_test.h"
#include "spillway.h"

#define KEY "libspillway's pre-shared key, 32b"

static void keyed_pager_refuses_server_without_auth(void **state)
{
	(void)state;
	struct srv keyless, key;
	srv_write_psk(&key, KEY);
	assert_int_equal(srv_start(&keyless, "--capacity", "64M", NULL), 0);
	struct spill_config cfg = { .servers = { keyless.url }, .psk_file = key.psk_path,
				    .local_budget = 1 << 20, .name = "keyed-pager" };
	errno = 0;
	spill_ctx *ctx = spill_open(&cfg);
	if (ctx) {
		spill_close(ctx);
		fail_msg("spill_open trusted a server that did not prove the key");
	}
	assert_int_equal(errno, SPILL_ENOSERVERS);
	assert_int_equal(srv_stop(&keyless), 0);
	unlink(key.psk_path);
}

static void keyed_pager_works_with_keyed_server(void **state)
{
	(void)state;
	struct srv s;
	srv_write_psk(&s, KEY);
	assert_int_equal(srv_start(&s, "--capacity", "64M", "--psk-file", s.psk_path, NULL), 0);
	struct spill_config cfg = { .servers = { s.url }, .psk_file = s.psk_path,
				    .local_budget = 1 << 20, .name = "keyed-pager" };
	spill_ctx *ctx = spill_open(&cfg);
	if (!ctx)
		fail_msg("spill_open: %s", spill_strerror(errno));
	spill_close(ctx);
	assert_int_equal(srv_stop(&s), 0);
	unlink(s.psk_path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(keyed_pager_refuses_server_without_auth),
		cmocka_unit_test(keyed_pager_works_with_keyed_server),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
