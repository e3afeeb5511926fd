// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * Control messages a server sends without being asked: SPILL_OP_CTRL
 * frames carrying a protobuf Ctrl (proto/spillway.proto). Drain sets or
 * clears the server's draining flag, so that no new extent goes there, and
 * kicks migrate.c, which moves the device's chunk copies off it. Reclaim
 * asks migrate.c to move about that many bytes of copies off the server
 * and answer with what it freed. Every other message is ignored.
 *
 * conn.c hands over the payload (at most a page, its CRC checked). It is
 * read by a small protobuf decoder that trusts no length: varints of ten
 * bytes at most, every field inside the bytes that remain, no groups. A
 * malformed message closes the connection (spillctl opens another). The
 * flag is kept across reconnects: a server that is still draining repeats
 * Drain to a client that registers again, and an undrain is sent to every
 * connected client.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/blkdev.h>
#include <linux/errno.h>

#include "spill.h"

#define CTRL_RECLAIM 17 /* Ctrl.reclaim: Reclaim { reclaim_id = 1; bytes = 2; deadline_ms = 3; } */
#define CTRL_DRAIN 41   /* Ctrl.drain: Drain { bool drain = 1; } */

#define PB_VARINT 0
#define PB_FIXED64 1
#define PB_BYTES 2
#define PB_FIXED32 5

/* The bytes of a message not read yet. */
struct pb {
	const u8 *p;
	const u8 *end;
};

static int pb_varint(struct pb *b, u64 *v)
{
	unsigned int shift;
	u64 x = 0;

	for (shift = 0; shift < 70; shift += 7) {
		u8 c;

		if (b->p == b->end)
			return -EBADMSG;
		c = *b->p++;
		if (shift == 63 && c > 1)
			return -EBADMSG; /* past 64 bits */
		x |= (u64)(c & 0x7f) << shift;
		if (!(c & 0x80)) {
			*v = x;
			return 0;
		}
	}
	return -EBADMSG;
}

/*
 * The next field of b: its number and wire type, a varint's value in *v,
 * the bytes of any other type in *body. -EBADMSG if it is malformed.
 */
static int pb_field(struct pb *b, u32 *num, u32 *type, u64 *v, struct pb *body)
{
	u64 key, len;

	if (pb_varint(b, &key))
		return -EBADMSG;
	*type = key & 7;
	if (key >> 3 == 0 || key >> 3 > U32_MAX)
		return -EBADMSG;
	*num = key >> 3;
	switch (*type) {
	case PB_VARINT:
		return pb_varint(b, v);
	case PB_FIXED64:
		len = 8;
		break;
	case PB_FIXED32:
		len = 4;
		break;
	case PB_BYTES:
		if (pb_varint(b, &len))
			return -EBADMSG;
		break;
	default:
		return -EBADMSG; /* groups (3, 4) or no type at all */
	}
	if (len > (u64)(b->end - b->p))
		return -EBADMSG;
	body->p = b->p;
	body->end = b->p + len;
	b->p += len;
	return 0;
}

/*
 * A message whose fields 1..n are all varints (Drain: drain; Reclaim:
 * reclaim_id, bytes, deadline_ms) into val[0..n-1], 0 when absent as in
 * proto3; other field numbers are skipped.
 */
static int parse_varints(struct pb b, u64 *val, u32 n)
{
	struct pb body;
	u32 num, type;
	u64 v = 0;

	memset(val, 0, n * sizeof(*val));
	while (b.p < b.end) {
		if (pb_field(&b, &num, &type, &v, &body))
			return -EBADMSG;
		if (num < 1 || num > n)
			continue;
		if (type != PB_VARINT)
			return -EBADMSG;
		val[num - 1] = v;
	}
	return 0;
}

static void set_draining(struct spill_dev *dev, unsigned int s, bool on)
{
	struct spill_server *srv = &dev->srv[s];

	if (READ_ONCE(srv->draining) == on)
		return;
	WRITE_ONCE(srv->draining, on);
	dev_info_ratelimited(disk_to_dev(dev->disk), "server %u (%s) %s\n", s,
			     srv->label[0] ? srv->label : "-",
			     on ? "drains: moving this device's pages off it" : "undrained");
	spill_migrate_kick(dev);
}

/*
 * The payload of a control frame from conn's server. 0, or -EBADMSG with
 * *why set (the connection then dies).
 */
int spill_notify_ctrl(struct spill_conn *conn, const u8 *buf, u32 len, const char **why)
{
	struct pb b = { .p = buf, .end = buf + len }, body;
	u64 v, val[3] = { 0 };
	u32 num, type, seen = 0;

	/* A oneof: the last one counts. */
	while (b.p < b.end) {
		if (pb_field(&b, &num, &type, &v, &body))
			goto bad;
		if (num != CTRL_DRAIN && num != CTRL_RECLAIM)
			continue;
		if (type != PB_BYTES)
			goto bad;
		if (parse_varints(body, val, num == CTRL_DRAIN ? 1 : 3))
			goto bad;
		seen = num;
	}
	if (seen == CTRL_DRAIN)
		set_draining(conn->dev, conn->server, val[0] != 0);
	else if (seen == CTRL_RECLAIM)
		spill_migrate_reclaim(conn->dev, conn->server, val[0], val[1],
				      min_t(u64, val[2], U32_MAX));
	return 0;
bad:
	*why = "malformed control message";
	return -EBADMSG;
}
