/* SPDX-License-Identifier: MIT */
/*
 * rdma:// client transport: librdmacm connection setup, then an rdma_stream
 * for frames and one-sided transfers. Each connection has its own protection
 * domain; the connect request carries the identity token (if any) so the
 * server can place the queue pair in that identity's domain.
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
#include "transport.h"

#define BOUNCE_BYTES   (8u << 20)  /* four 2 MiB groups in flight */
#define ONESIDED_MAX   128u
#define SPIN_US        50          /* busy-poll before sleeping on the channel */

struct rdma_transport {
	struct transport base;
	struct rdma_stream *s;
	struct ibv_pd *pd;
	int timeout_ms;
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

static int wait_established(struct rdma_transport *t, const struct url *u,
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

static void rdma_close(struct transport *base)
{
	struct rdma_transport *t = (struct rdma_transport *)base;
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
		     struct transport **out)
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
	struct rdma_transport *t = calloc(1, sizeof(*t));
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
	t->base.ops = &transport_rdma_ops;
	t->timeout_ms = p->timeout_ms;

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
	*out = &t->base;
	return 0;
fail:
	if (t)
		rdma_close(&t->base);
	return rc;
}

static int rdma_fd(struct transport *t)
{
	return rdma_stream_fd(((struct rdma_transport *)t)->s);
}

static ssize_t rdma_sendv(struct transport *t, const struct iovec *iov, int iovcnt)
{
	return rdma_stream_sendv(((struct rdma_transport *)t)->s, iov, iovcnt);
}

static ssize_t rdma_recv(struct transport *t, void *buf, size_t len)
{
	return rdma_stream_recv(((struct rdma_transport *)t)->s, buf, len);
}

static ssize_t rdma_recv_wait(struct transport *base, void *buf, size_t len)
{
	struct rdma_transport *t = (struct rdma_transport *)base;
	for (;;) {
		ssize_t n = rdma_stream_recv(t->s, buf, len);
		if (n != -EAGAIN)
			return n;
		if (rdma_stream_onesided_done(t->s))
			return -EINTR;
		int w = rdma_stream_wait(t->s, t->timeout_ms, SPIN_US);
		if (w < 0)
			return w;
		if (w == 0)
			return -EAGAIN;
	}
}

static int rdma_post(struct transport *t, int write, uint64_t raddr, uint32_t rkey, void *buf,
		     size_t len, uint64_t cookie)
{
	return rdma_stream_post_onesided(((struct rdma_transport *)t)->s, write, raddr, rkey, buf,
					 len, cookie);
}

static int rdma_reap(struct transport *t, uint64_t *cookie, int *status, int max)
{
	return rdma_stream_reap_onesided(((struct rdma_transport *)t)->s, cookie, status, max);
}

const struct transport_ops transport_rdma_ops = {
	.scheme = "rdma",
	.connect = rdma_open,
	.fd = rdma_fd,
	.sendv = rdma_sendv,
	.recv = rdma_recv,
	.recv_wait = rdma_recv_wait,
	.close = rdma_close,
	.post_onesided = rdma_post,
	.reap_onesided = rdma_reap,
};
