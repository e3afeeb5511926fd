/* SPDX-License-Identifier: MIT */
/*
 * rdma:// listeners. The CM event channel sits in the main thread's loop.
 * A connect request gets its queue pair in the protection domain of the
 * identity its private data names (by token), or in a fresh one, then is
 * accepted and handed to a worker like an accepted TCP socket.
 *
 * The token is not a credential: it crosses the network in clear, in every
 * connect request, before Hello and Auth. So the placement must not give
 * anything: the QP is accepted with no remote access (rdma_stream_accept,
 * cfg.passive_locked), and an RDMA READ or WRITE from the peer, with any
 * address and key, even a key of that identity's extents (rxe keys are
 * small and guessable), gets an invalid-request NAK and kills only that
 * connection. Remote access is switched on (rdma_access_registered) only
 * after the connection has authenticated and registered as the identity
 * whose domain it is in. The alternative, a fresh domain per connection
 * until then, is impossible: a QP cannot change domains, and keys of the
 * identity's regions are valid for every QP in its domain.
 *
 * Admission (admission.c) comes first: a refused request is rejected before any
 * queue pair or domain is made for it.
 */
#include "rdma_listen.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include <event2/event.h>
#include <infiniband/verbs.h>
#include <rdma/rdma_cma.h>

#include "admission.h"
#include "conn.h"
#include "log.h"
#include "numa_place.h"
#include "rdma_check.h"
#include "rdma_connect_data.h"
#include "rdma_domain.h"
#include "rdma_stream.h"
#include "server.h"
#include "stream.h"
#include "worker.h"

#define RDMA_BACKLOG 128

struct rdma_listener {
	struct server *s;
	struct rdma_event_channel *ch;
	struct rdma_cm_id *id;
	struct event *ev;
	int node;
};

static struct rdma_listener listeners[OPT_MAX_LISTEN];
static int nlisteners;

static void peer_name(struct rdma_cm_id *id, char *buf, size_t cap)
{
	struct sockaddr *sa = rdma_get_peer_addr(id);
	char host[INET6_ADDRSTRLEN] = "?";
	if (sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((struct sockaddr_in *)sa)->sin_addr, host, sizeof(host));
	else if (sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)sa)->sin6_addr, host, sizeof(host));
	snprintf(buf, cap, "rdma:%s:%u", host, ntohs(rdma_get_dst_port(id)));
}

/* A peer can trigger these at will: one line per interval, counting the rest. */
static atomic_uint_fast64_t refusal_log_ms, refusal_log_skipped;

static void log_refusal(const char *peer, const char *why)
{
	uint64_t skipped;
	if (admission_log_ok(&refusal_log_ms, &refusal_log_skipped, &skipped))
		log_warn("%s: refused: %s (%llu more RDMA refusals since the last such line)", peer,
			 why, (unsigned long long)skipped);
}

/* The responder resources to grant: what the client asks, within what the
 * device can hold (rxe and real HCAs differ). */
static uint8_t responder_resources(struct ibv_context *ctx, uint8_t asked)
{
	struct ibv_device_attr a;
	int max = ibv_query_device(ctx, &a) ? 1 : a.max_qp_rd_atom;
	return (uint8_t)(asked < max ? asked : max);
}

static void put_domain(void *dom)
{
	rdma_domain_put(dom);
}

static void on_connect_request(struct rdma_listener *l, struct rdma_cm_id *id,
			       const uint8_t *token, int has_token, uint8_t asked_reads)
{
	char peer[64], why[256] = "";
	peer_name(id, peer, sizeof(peer));
	struct admission_ticket adm;
	const char *refused;
	if (admission_enter(rdma_get_peer_addr(id), &adm, &refused)) {
		rdma_reject(id, NULL, 0); /* counted and logged by admission */
		rdma_destroy_id(id);
		return;
	}
	struct rdma_domain *dom = has_token ? registry_rdma_domain(l->s->reg, token, id->verbs)
					    : rdma_domain_new(id->verbs);
	if (!dom) {
		log_refusal(peer, has_token ? "no live identity has the token it presented"
					    : "cannot allocate a protection domain");
		rdma_reject(id, NULL, 0);
		rdma_destroy_id(id);
		admission_leave(&adm);
		return;
	}
	struct rdma_stream *st;
	static const struct rdma_stream_cfg locked = { .passive_locked = 1 };
	int rc = rdma_stream_create(id, dom->pd, &locked, &st, why, sizeof(why));
	if (rc) {
		log_refusal(peer, why);
		rdma_reject(id, NULL, 0);
		rdma_destroy_id(id);
		rdma_domain_put(dom);
		admission_leave(&adm);
		return;
	}
	struct rdma_conn_param cp = {
		.responder_resources = responder_resources(id->verbs, asked_reads),
		.initiator_depth = 1, .retry_count = 7, .rnr_retry_count = 7,
	};
	if ((rc = rdma_stream_accept(st, &cp))) {
		log_refusal(peer, strerror(-rc));
		rdma_reject(rdma_stream_id(st), NULL, 0);
		rdma_stream_destroy(st);
		rdma_domain_put(dom);
		admission_leave(&adm);
		return;
	}
	struct conn_origin o = { .dom = dom, .node = l->node, .adm = adm };
	snprintf(o.peer, sizeof(o.peer), "%s", peer);
	/* The stream's close puts the domain, after destroying the QP in it. */
	if (stream_rdma_wrap(st, 0, put_domain, dom, &o.stream)) {
		admission_leave(&adm);
		return;
	}
	workers_hand_off(l->s, &o);
}

static void on_cm_event(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct rdma_listener *l = arg;
	struct rdma_cm_event *ev;
	while (rdma_get_cm_event(l->ch, &ev) == 0) {
		if (ev->event != RDMA_CM_EVENT_CONNECT_REQUEST) {
			rdma_ack_cm_event(ev);
			continue;
		}
		/* Copy what we need: the id can only move to its own channel
		 * once this event is acknowledged. */
		struct rdma_cm_id *id = ev->id;
		uint8_t token[CTRL_TOKEN_BYTES];
		int has = rdma_connect_data_token(ev->param.conn.private_data,
						  ev->param.conn.private_data_len, token);
		uint8_t asked = ev->param.conn.initiator_depth;
		rdma_ack_cm_event(ev);
		if (has < 0) {
			log_refusal("rdma", "a connect request that is not from a Spillway client");
			rdma_reject(id, NULL, 0);
			rdma_destroy_id(id);
			continue;
		}
		on_connect_request(l, id, token, has, asked);
	}
}

static int fail(struct rdma_listener *l, const char *text, const char *why, int rc)
{
	log_error("--listen %s: %s", text, why);
	if (l->id)
		rdma_destroy_id(l->id);
	if (l->ch)
		rdma_destroy_event_channel(l->ch);
	memset(l, 0, sizeof(*l));
	return rc;
}

int rdma_listener_start(struct server *s, const struct url *u, const char *text)
{
	char why[320];
	if (nlisteners == OPT_MAX_LISTEN)
		return -ENOSPC;
	struct rdma_listener *l = &listeners[nlisteners];
	l->s = s;
	if (rdma_check_devices(why, sizeof(why)))
		return fail(l, text, why, -ENODEV);
	/* The pool may end up registered in full, plus each connection's
	 * buffers: ask for it now rather than fail one client at a time. */
	size_t need = (size_t)s->opt.capacity + ((size_t)64 << 20);
	if (rdma_check_memlock(need, why, sizeof(why)))
		return fail(l, text, why, -ENOMEM);
	l->ch = rdma_create_event_channel();
	if (!l->ch || rdma_create_id(l->ch, &l->id, l, RDMA_PS_TCP))
		return fail(l, text, strerror(errno), -errno);
	int fl = fcntl(l->ch->fd, F_GETFL);
	fcntl(l->ch->fd, F_SETFL, fl | O_NONBLOCK);

	char port[16];
	snprintf(port, sizeof(port), "%d", u->port);
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE }, *res;
	if (getaddrinfo(u->host, port, &hints, &res))
		return fail(l, text, "cannot resolve host", -EINVAL);
	int rc = rdma_bind_addr(l->id, res->ai_addr) ? -errno : 0;
	/* The listener's node: as configured, else the HCA's own, else (soft
	 * RoCE) that of the netdev owning the address. */
	l->node = u->node;
	if (l->node < 0 && !rc && l->id->verbs)
		l->node = numa_node_of_ibdev(ibv_get_device_name(l->id->verbs->device));
	if (l->node < 0)
		l->node = numa_node_of_sockaddr(res->ai_addr);
	freeaddrinfo(res);
	if (rc) {
		rdma_explain_addr_failure(-rc, u->host, why, sizeof(why));
		return fail(l, text, why, rc);
	}
	int mtu = 0;
	if (l->id->verbs && rdma_check_port(l->id->verbs, l->id->port_num, &mtu, why, sizeof(why)))
		return fail(l, text, why, -ENETDOWN);
	if (rdma_listen(l->id, RDMA_BACKLOG))
		return fail(l, text, strerror(errno), -errno);
	l->ev = event_new(s->base, l->ch->fd, EV_READ | EV_PERSIST, on_cm_event, l);
	if (!l->ev || event_add(l->ev, NULL))
		return fail(l, text, "out of memory", -ENOMEM);
	nlisteners++;
	if (!s->rdma_port)
		s->rdma_port = ntohs(rdma_get_src_port(l->id));
	char dev[80] = "";
	if (l->id->verbs)
		snprintf(dev, sizeof(dev), ", device %s port %u, active MTU %d",
			 ibv_get_device_name(l->id->verbs->device), l->id->port_num, mtu);
	char node[24] = "";
	if (l->node >= 0)
		snprintf(node, sizeof(node), ", node %d", l->node);
	log_info("listening on rdma://%s:%u (%s%s%s)", u->host, ntohs(rdma_get_src_port(l->id)),
		 "one-sided READ/WRITE", dev, node);
	return 0;
}

void rdma_listeners_pause(void)
{
	for (int i = 0; i < nlisteners; i++)
		event_del(listeners[i].ev);
}

void rdma_listeners_stop(void)
{
	for (int i = 0; i < nlisteners; i++) {
		struct rdma_listener *l = &listeners[i];
		event_free(l->ev);
		rdma_destroy_id(l->id);
		rdma_destroy_event_channel(l->ch);
		memset(l, 0, sizeof(*l));
	}
	nlisteners = 0;
}
