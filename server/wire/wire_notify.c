/* SPDX-License-Identifier: MIT */
#include "wire_notify.h"

#include "ctrl.h"

int wire_notify_reclaim(void *buf, size_t cap, uint64_t reclaim_id, uint64_t bytes,
			uint64_t deadline_ms)
{
	Spillway__Reclaim r = SPILLWAY__RECLAIM__INIT;
	r.reclaim_id = reclaim_id;
	r.bytes = bytes;
	r.deadline_ms = deadline_ms;
	Spillway__Ctrl m = SPILLWAY__CTRL__INIT;
	m.msg_case = SPILLWAY__CTRL__MSG_RECLAIM;
	m.reclaim = &r;
	return ctrl_pack(&m, buf, cap);
}

int wire_notify_drain(void *buf, size_t cap, int on)
{
	Spillway__Drain d = SPILLWAY__DRAIN__INIT;
	d.drain = on;
	Spillway__Ctrl m = SPILLWAY__CTRL__INIT;
	m.msg_case = SPILLWAY__CTRL__MSG_DRAIN;
	m.drain = &d;
	return ctrl_pack(&m, buf, cap);
}
