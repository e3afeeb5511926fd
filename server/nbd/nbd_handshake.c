/* SPDX-License-Identifier: MIT */
/*
 * The fixed newstyle handshake. Options are answered one by one; anything the
 * server does not implement gets NBD_REP_ERR_UNSUP after its payload has been
 * read, so the client may carry on. Only a broken framing (wrong magic, a
 * client without FIXED_NEWSTYLE, unknown client flags, an unknown name given
 * to NBD_OPT_EXPORT_NAME) ends the connection, as the spec requires.
 * Parsing is in nbd_parse.c; the whole negotiation runs against the deadline
 * the listener set in c->io (--nbd-handshake-timeout).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "nbd_conn.h"
#include "nbd_export.h"
#include "nbd_io.h"
#include "nbd_log.h"
#include "nbd_parse.h"
#include "nbd_proto.h"

/* The protocol stays at the edge (server/wire/): no control message here. */
#ifdef PROTOBUF_C_spillway_2eproto__INCLUDED
#error "protobuf reached this file: convert in server/wire/ instead"
#endif

uint16_t nbd_transmission_flags(void)
{
	return NBD_FLAG_HAS_FLAGS | NBD_FLAG_SEND_FLUSH | NBD_FLAG_SEND_FUA |
	       NBD_FLAG_SEND_TRIM | NBD_FLAG_SEND_WRITE_ZEROES | NBD_FLAG_SEND_FAST_ZERO |
	       NBD_FLAG_CAN_MULTI_CONN;
}

static int opt_reply(struct nbd_conn *c, uint32_t opt, uint32_t type, const void *data,
		     uint32_t len)
{
	uint8_t h[20];
	nbd_put64(h, NBD_REP_MAGIC);
	nbd_put32(h + 8, opt);
	nbd_put32(h + 12, type);
	nbd_put32(h + 16, len);
	return nbd_send2(&c->io, h, sizeof(h), data, len);
}

static int reply_list(struct nbd_conn *c, uint32_t opt)
{
	size_t n;
	struct nbd_export_info *v = nbd_export_list(&n);
	int rc = 0;
	for (size_t i = 0; !rc && i < n; i++) {
		uint8_t rec[4 + sizeof(v[i].name)];
		uint32_t len = (uint32_t)strlen(v[i].name);
		nbd_put32(rec, len);
		memcpy(rec + 4, v[i].name, len);
		rc = opt_reply(c, opt, NBD_REP_SERVER, rec, 4 + len);
	}
	nbd_export_list_free(v);
	return rc ? rc : opt_reply(c, opt, NBD_REP_ACK, NULL, 0);
}

/* NBD_OPT_INFO / NBD_OPT_GO. Returns the export for a successful GO, NULL
 * otherwise; *fatal set when the connection must end. */
static struct nbd_export *info_or_go(struct nbd_conn *c, uint32_t opt, const uint8_t *p,
				     uint32_t len, int *fatal)
{
	*fatal = 0;
	struct nbd_info_req rq;
	int rc = nbd_parse_info_req(p, len, &rq);
	if (rc == -EINVAL) {
		*fatal = opt_reply(c, opt, NBD_REP_ERR_INVALID, NULL, 0) != 0;
		return NULL;
	}
	const char *name = rq.name;
	uint32_t nlen = rq.name_len;
	int want_name = rq.want_name;
	struct nbd_export *x = rc ? NULL : nbd_export_open(name);
	if (!x) {
		static const char msg[] = "no export by that name";
		*fatal = opt_reply(c, opt, NBD_REP_ERR_UNKNOWN, msg, sizeof(msg) - 1) != 0;
		return NULL;
	}
	uint8_t ex[12], bs[14], nm[2 + 4096];
	nbd_put16(ex, NBD_INFO_EXPORT);
	nbd_put64(ex + 2, nbd_export_size(x));
	nbd_put16(ex + 10, nbd_transmission_flags());
	nbd_put16(bs, NBD_INFO_BLOCK_SIZE);
	nbd_put32(bs + 2, NBD_BLOCK_MIN);
	nbd_put32(bs + 6, NBD_BLOCK_PREF);
	nbd_put32(bs + 10, NBD_BLOCK_MAX);
	nbd_put16(nm, NBD_INFO_NAME);
	memcpy(nm + 2, name, nlen);
	if (opt_reply(c, opt, NBD_REP_INFO, ex, sizeof(ex)) ||
	    opt_reply(c, opt, NBD_REP_INFO, bs, sizeof(bs)) ||
	    (want_name && opt_reply(c, opt, NBD_REP_INFO, nm, 2 + nlen)) ||
	    opt_reply(c, opt, NBD_REP_ACK, NULL, 0)) {
		nbd_export_close(x);
		*fatal = 1;
		return NULL;
	}
	if (opt == NBD_OPT_GO)
		return x;
	nbd_export_close(x);
	return NULL;
}

static struct nbd_export *export_name(struct nbd_conn *c, const uint8_t *p, uint32_t len,
				      int no_zeroes)
{
	char name[NBD_NAME_MAX + 1];
	int rc = nbd_parse_export_name(p, len, name);
	if (rc == -EINVAL)
		return NULL;
	struct nbd_export *x = rc ? NULL : nbd_export_open(name);
	if (!x) {
		nbd_log_peer("%s: nbd: closing connection: no export '%.64s'", c->peer, name);
		return NULL;
	}
	uint8_t r[10 + 124] = { 0 };
	nbd_put64(r, nbd_export_size(x));
	nbd_put16(r + 8, nbd_transmission_flags());
	if (nbd_send_full(&c->io, r, no_zeroes ? 10 : sizeof(r))) {
		nbd_export_close(x);
		return NULL;
	}
	return x;
}

struct nbd_export *nbd_handshake(struct nbd_conn *c)
{
	uint8_t hello[18], cflags[4], oh[NBD_OPT_HDR_LEN];
	nbd_put64(hello, NBD_MAGIC);
	nbd_put64(hello + 8, NBD_IHAVEOPT);
	nbd_put16(hello + 16, NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES);
	if (nbd_send_full(&c->io, hello, sizeof(hello)) || nbd_recv_full(&c->io, cflags, 4))
		return NULL;
	uint32_t cf = nbd_get32(cflags);
	if (nbd_parse_client_flags(cf)) {
		nbd_log_peer("%s: nbd: closing connection: client flags 0x%x (need fixed newstyle)",
			 c->peer, cf);
		return NULL;
	}
	uint8_t *p = malloc(NBD_OPT_MAX_LEN);
	if (!p)
		return NULL;
	struct nbd_export *x = NULL;
	for (;;) {
		if (nbd_recv_full(&c->io, oh, sizeof(oh)))
			break;
		uint32_t opt, len;
		if (nbd_parse_opt_hdr(oh, &opt, &len)) {
			nbd_log_peer("%s: nbd: closing connection: bad option magic", c->peer);
			break;
		}
		if (len > NBD_OPT_MAX_LEN) {
			if (opt == NBD_OPT_EXPORT_NAME || nbd_drain(&c->io, len) ||
			    opt_reply(c, opt, NBD_REP_ERR_TOO_BIG, NULL, 0))
				break;
			continue;
		}
		if (nbd_recv_full(&c->io, p, len))
			break;
		int fatal = 0;
		switch (opt) {
		case NBD_OPT_EXPORT_NAME:
			x = export_name(c, p, len, cf & NBD_FLAG_NO_ZEROES);
			fatal = 1;
			break;
		case NBD_OPT_ABORT:
			opt_reply(c, opt, NBD_REP_ACK, NULL, 0);
			fatal = 1;
			break;
		case NBD_OPT_LIST:
			fatal = (len ? opt_reply(c, opt, NBD_REP_ERR_INVALID, NULL, 0)
				     : reply_list(c, opt)) != 0;
			break;
		case NBD_OPT_INFO:
		case NBD_OPT_GO:
			x = info_or_go(c, opt, p, len, &fatal);
			break;
		default:
			fatal = opt_reply(c, opt, NBD_REP_ERR_UNSUP, NULL, 0) != 0;
			break;
		}
		if (x || fatal)
			break;
	}
	free(p);
	return x;
}
