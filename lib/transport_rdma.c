/* SPDX-License-Identifier: MIT */
/*
 * rdma:// connector: librdmacm connection setup, then an rdma_stream for
 * frames and one-sided transfers, as a stream (stream_rdma.c). Each
 * connection has its own protection domain, released by the stream's close
 * after the queue pair; the connect request carries the identity token (if
 * any) so the server can place the queue pair in that identity's domain.
 */
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <infiniband/verbs.h>
#include <rdma/rdma_cma.h>

#include "rdma_check.h"
#include "rdma_connect_data.h"
#include "rdma_stream.h"
#include "stream.h"
#include "transport.h"

#define BOUNCE_BYTES   (8u << 20)  /* four 2 MiB groups in flight */
#define ONESIDED_MAX   128u

/* What is set up so far; the stream's close frees both once it has them. */
struct rdma_setup {
	struct rdma_stream *s;
	struct ibv_pd *pd;
};

static void say(const struct transport_params *p, const char *fmt, const char *a, const char *b)
{
	if (p->why && p->why_cap)
		snprintf(p->why, p->why_cap, fmt, a, b);
}

/* Wait for one CM event of type want on ch (blocking, bounded); *got
 * names the event that came instead. */
static int expect_event(struct rdma_event_channel *ch, enum rdma_cm_event_type want,
			int timeout_ms, int *status, const char **got_name)
{
	*got_name = "no event";
	struct pollfd pf = { .fd = ch->fd, .events = POLLIN };
	int r = poll(&pf, 1, timeout_ms);
	if (r <= 0)
		return r == 0 ? -ETIMEDOUT : -errno;
	struct rdma_cm_event *ev;
	if (rdma_get_cm_event(ch, &ev))
		return -errno;
	enum rdma_cm_event_type got = ev->event;
	*status = ev->status;
	*got_name = rdma_event_str(got);
	rdma_ack_cm_event(ev);
	if (got == want)
		return 0;
	return got == RDMA_CM_EVENT_ADDR_ERROR || got == RDMA_CM_EVENT_ROUTE_ERROR
		       ? -EHOSTUNREACH : -EPROTO;
}

static int resolve(struct rdma_cm_id *id, struct rdma_event_channel *ch, const struct url *u,
		   const struct transport_params *p)
{
	char port[16];
	snprintf(port, sizeof(port), "%d", u->port);
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res;
	if (getaddrinfo(u->host, port, &hints, &res)) {
		say(p, "cannot resolve %s%s", u->host, "");
		return -EHOSTUNREACH;
	}
	/* With source=, the connection leaves from that address's device; a
	 * destination that is also a local address then still crosses the
	 * wire instead of being looped back inside one device. */
	struct addrinfo *src = NULL;
	if (u->source[0] && getaddrinfo(u->source, NULL, &hints, &src)) {
		freeaddrinfo(res);
		say(p, "cannot resolve source address %s%s", u->source, "");
		return -EHOSTUNREACH;
	}
	const char *got = "";
	int status = 0, rc = rdma_resolve_addr(id, src ? src->ai_addr : NULL, res->ai_addr,
					       p->timeout_ms) ? -errno : 0;
	freeaddrinfo(res);
	if (src)
		freeaddrinfo(src);
	if (!rc)
		rc = expect_event(ch, RDMA_CM_EVENT_ADDR_RESOLVED, p->timeout_ms, &status, &got);
	if (rc) {
		char why[256];
		rdma_explain_addr_failure(status ? -status : -rc, u->host, why, sizeof(why));
		say(p, "%s (%s)", why, got);
		return rc;
	}
	if (rdma_resolve_route(id, p->timeout_ms))
		rc = -errno;
	else
		rc = expect_event(ch, RDMA_CM_EVENT_ROUTE_RESOLVED, p->timeout_ms, &status, &got);
	if (rc) {
		char e[64];
		snprintf(e, sizeof(e), "%s, %s", strerror(status ? -status : -rc), got);
		say(p, "no RDMA route to %s: %s", u->host, e);
	}
	return rc;
}

static int wait_established(struct rdma_setup *t, const struct url *u,
			    const struct transport_params *p)
{
	for (;;) {
		int rc = rdma_stream_process(t->s);
		if (rc) {
			say(p, "RDMA connection to %s refused or unreachable: %s", u->host,
			    strerror(-rc));
			return rc;
		}
		if (rdma_stream_connected(t->s))
			return 0;
		int w = rdma_stream_wait(t->s, p->timeout_ms, 0);
		if (w < 0)
			return w;
		if (w == 0) {
			say(p, "RDMA connection to %s timed out%s", u->host, "");
			return -ETIMEDOUT;
		}
	}
}

static void dealloc_pd(void *pd)
{
	ibv_dealloc_pd(pd);
}

static void setup_free(struct rdma_setup *t)
{
	rdma_stream_destroy(t->s);
	if (t->pd)
		ibv_dealloc_pd(t->pd);
	free(t);
}

/* RDMA READs this side keeps in flight per QP: up to 16, within what the
 * device can issue (real HCAs differ; asking for more fails the connect). */
static uint8_t initiator_depth(struct ibv_context *ctx)
{
	struct ibv_device_attr a;
	if (ibv_query_device(ctx, &a) || a.max_qp_init_rd_atom < 1)
		return 1;
	return (uint8_t)(a.max_qp_init_rd_atom < 16 ? a.max_qp_init_rd_atom : 16);
}

static int rdma_open(const struct url *u, const struct transport_params *p,
		     struct stream **out)
{
	char why[256] = "";
	if (rdma_check_devices(why, sizeof(why))) {
		say(p, "%s%s", why, "");
		return -ENODEV;
	}
	struct rdma_event_channel *ch = rdma_create_event_channel();
	struct rdma_cm_id *id = NULL;
	if (!ch || rdma_create_id(ch, &id, NULL, RDMA_PS_TCP)) {
		int e = errno;
		say(p, "rdma_cm: %s%s", strerror(e), "");
		if (ch)
			rdma_destroy_event_channel(ch);
		return -e;
	}
	struct rdma_setup *t = calloc(1, sizeof(*t));
	int rc = t ? resolve(id, ch, u, p) : -ENOMEM;
	int mtu = 0;
	if (!rc && (rc = rdma_check_port(id->verbs, id->port_num, &mtu, why, sizeof(why))))
		say(p, "%s%s", why, "");
	size_t need = (size_t)2 * RDMA_STREAM_SLOTS * RDMA_STREAM_SLOT_BYTES + BOUNCE_BYTES;
	if (!rc && (rc = rdma_check_memlock(need, why, sizeof(why))))
		say(p, "%s%s", why, "");
	if (!rc && !(t->pd = ibv_alloc_pd(id->verbs))) {
		rc = -errno;
		say(p, "protection domain: %s%s", strerror(errno), "");
	}
	if (!rc) {
		struct rdma_stream_cfg cfg = { .bounce_bytes = BOUNCE_BYTES,
					       .onesided_max = ONESIDED_MAX };
		rc = rdma_stream_create(id, t->pd, &cfg, &t->s, why, sizeof(why));
		if (rc)
			say(p, "%s%s", why, "");
		else
			id = NULL; /* the stream owns it now */
	}
	if (id)
		rdma_destroy_id(id);
	rdma_destroy_event_channel(ch);
	if (rc)
		goto fail;

	struct rdma_connect_data cd;
	rdma_connect_data_pack(&cd, p->token);
	struct rdma_conn_param cp = {
		.private_data = &cd, .private_data_len = sizeof(cd),
		.responder_resources = 1,
		.initiator_depth = initiator_depth(rdma_stream_id(t->s)->verbs),
		.retry_count = 7, .rnr_retry_count = 7, /* 7: retry RNR for ever */
	};
	if (rdma_connect(rdma_stream_id(t->s), &cp)) {
		rc = -errno;
		say(p, "rdma_connect to %s: %s", u->host, strerror(errno));
		goto fail;
	}
	if ((rc = wait_established(t, u, p)))
		goto fail;
	rc = stream_rdma_wrap(t->s, p->timeout_ms, dealloc_pd, t->pd, out);
	free(t); /* the stream owns both now, also on failure */
	return rc;
fail:
	if (t)
		setup_free(t);
	return rc;
}

const struct transport_ops transport_rdma_ops = {
	.scheme = "rdma",
	.connect = rdma_open,
};
