/* SPDX-License-Identifier: MIT */
/*
 * Server-initiated messages (server/wire/wire_notify.c): a Reclaim and a
 * Drain packed into WIRE_NOTIFY_MAX bytes unpack, through the client's own
 * codec (ctrl_unpack), to the values given, at the top of their types; a
 * buffer too small is refused, not overrun.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "ctrl.h"
#include "wire_notify.h"

static Spillway__Ctrl *unpack(const uint8_t *buf, int len)
{
	assert_true(len > 0);
	int err;
	const char *why;
	Spillway__Ctrl *m = ctrl_unpack(buf, (size_t)len, &err, &why);
	assert_non_null(m);
	return m;
}

static void test_reclaim(void **state)
{
	(void)state;
	const uint64_t v[][3] = {
		{ UINT64_MAX, UINT64_MAX, UINT64_MAX },
		{ 1, UINT64_C(0x8123456789abcdef), 30000 },
		{ 0, 0, 0 },
	};
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		uint8_t buf[WIRE_NOTIFY_MAX];
		int len = wire_notify_reclaim(buf, sizeof(buf), v[i][0], v[i][1], v[i][2]);
		Spillway__Ctrl *m = unpack(buf, len);
		assert_int_equal(m->msg_case, SPILLWAY__CTRL__MSG_RECLAIM);
		assert_true(m->reclaim->reclaim_id == v[i][0]);
		assert_true(m->reclaim->bytes == v[i][1]);
		assert_true(m->reclaim->deadline_ms == v[i][2]);
		ctrl_free(m);
	}
	uint8_t small[4];
	assert_int_equal(wire_notify_reclaim(small, sizeof(small), 1, 2, 3), -EMSGSIZE);
}

static void test_drain(void **state)
{
	(void)state;
	for (int on = 0; on <= 1; on++) {
		uint8_t buf[WIRE_NOTIFY_MAX];
		Spillway__Ctrl *m = unpack(buf, wire_notify_drain(buf, sizeof(buf), on));
		assert_int_equal(m->msg_case, SPILLWAY__CTRL__MSG_DRAIN);
		assert_int_equal(m->drain->drain, on);
		ctrl_free(m);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reclaim),
		cmocka_unit_test(test_drain),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
