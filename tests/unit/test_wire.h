/* SPDX-License-Identifier: MIT */
/*
 * For the wire module's tests (test_wire_*.c): one message of kind, wrapped
 * in a Ctrl, encoded and decoded again with protobuf-c alone. Not through
 * ctrl_unpack: its rules would refuse the hostile names the tests send on
 * purpose, and the wire module's job is to carry bytes, not to judge them.
 * Include after <cmocka.h>. Free the result with spillway__ctrl__free_unpacked.
 */
#ifndef SPILLWAY_TEST_WIRE_H
#define SPILLWAY_TEST_WIRE_H

#include <stdint.h>
#include <stdlib.h>

#include "spillway.pb-c.h"

static inline Spillway__Ctrl *wire_round_trip(Spillway__Ctrl__MsgCase kind, void *msg)
{
	Spillway__Ctrl m = SPILLWAY__CTRL__INIT;
	m.msg_case = kind;
	m.hello = msg; /* every case is a pointer in the same union */
	size_t len = spillway__ctrl__get_packed_size(&m);
	uint8_t *buf = malloc(len ? len : 1);
	assert_non_null(buf);
	assert_int_equal(spillway__ctrl__pack(&m, buf), len);
	Spillway__Ctrl *out = spillway__ctrl__unpack(NULL, len, buf);
	free(buf);
	assert_non_null(out);
	assert_int_equal(out->msg_case, kind);
	return out;
}

#endif
