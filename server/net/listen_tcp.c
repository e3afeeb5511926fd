/* SPDX-License-Identifier: MIT */
/*
 * tcp:// listeners, in the main thread's loop. Each accepted socket passes
 * admission (admission.c) or is closed at once; an admitted one goes to a
 * worker with its ticket. When accept() runs out of descriptors or memory
 * the listener is disabled for --accept-backoff-ms by a timer, never
 * retried in a loop, and the timer re-enables it unless shutdown began.
 * The same back-off serves the metrics listener (http.c).
 */
#include "listen_tcp.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/listener.h>

#include "admission.h"
#include "log.h"
#include "numa_place.h"
#include "server.h"
#include "stream.h"
#include "worker.h"

/* A listener's accept back-off. */
struct listen_backoff {
	struct evconnlistener *l;
	struct event *resume;   /* re-enables l */
	int paused;             /* stopped for good: the timer must not resume it */
	char name[300];         /* the listener, for messages */
};

/* Every back-off, found by its listener: the error callback gets the
 * listener's own argument, which for the metrics listener is libevent's.
 * Filled at start-up, before any loop runs; read-only afterwards. */
#define MAX_BACKOFFS (OPT_MAX_LISTEN + 8)
static struct listen_backoff *backoffs[MAX_BACKOFFS];
static int nbackoffs;

/* What the callbacks need to know about their listener. */
struct tcp_listener {
	struct server *s;
	struct listen_backoff *backoff;
	int node;               /* NUMA node its connections prefer, or -1 */
};
static struct tcp_listener tcp_listeners[OPT_MAX_LISTEN];

static void peer_text(const struct sockaddr *sa, char *buf, size_t cap)
{
	char host[INET6_ADDRSTRLEN] = "?";
	int port = 0;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
		inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
		port = ntohs(in->sin_port);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
		inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
		port = ntohs(in6->sin6_port);
	}
	snprintf(buf, cap, "%s:%d", host, port);
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
		      int salen, void *arg)
{
	(void)l;
	(void)salen;
	struct tcp_listener *tl = arg;
	struct conn_origin o = { .node = tl->node };
	const char *why;
	if (admission_enter(sa, &o.adm, &why)) {
		close(fd); /* counted and logged (rate-limited) by admission */
		return;
	}
	peer_text(sa, o.peer, sizeof(o.peer));
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (stream_socket_wrap(fd, 0, &o.stream)) { /* it closed fd */
		admission_leave(&o.adm);
		return;
	}
	workers_hand_off(tl->s, &o);
}

static void on_resume(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct listen_backoff *b = arg;
	if (!b->paused)
		evconnlistener_enable(b->l);
}

/* accept() failed for a reason that is not "try again". */
static void on_accept_error(struct evconnlistener *l, void *arg)
{
	(void)arg;
	struct listen_backoff *b = NULL;
	for (int i = 0; i < nbackoffs && !b; i++)
		if (backoffs[i] && backoffs[i]->l == l)
			b = backoffs[i];
	if (!b)
		return;
	int err = EVUTIL_SOCKET_ERROR();
	unsigned ms = admission_accept_failed(b->name, err);
	if (!ms) {
		log_warn("%s: accept: %s", b->name, strerror(err));
		return;
	}
	/* The pending connection stays in the backlog; the socket stays
	 * readable, so waiting means not watching it for a while. */
	evconnlistener_disable(l);
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
	evtimer_add(b->resume, &tv);
}

struct listen_backoff *listen_backoff_attach(struct evconnlistener *l, struct event_base *base,
					     const char *name)
{
	if (nbackoffs == MAX_BACKOFFS)
		return NULL;
	struct listen_backoff *b = calloc(1, sizeof(*b));
	if (!b || !(b->resume = evtimer_new(base, on_resume, b))) {
		free(b);
		return NULL;
	}
	b->l = l;
	snprintf(b->name, sizeof(b->name), "%s", name);
	backoffs[nbackoffs++] = b;
	evconnlistener_set_error_cb(l, on_accept_error);
	return b;
}

void listen_backoff_pause(struct listen_backoff *b)
{
	if (!b)
		return;
	b->paused = 1;
	evtimer_del(b->resume);
	evconnlistener_disable(b->l);
}

void listen_backoff_free(struct listen_backoff *b)
{
	if (!b)
		return;
	for (int i = 0; i < nbackoffs; i++)
		if (backoffs[i] == b)
			backoffs[i] = NULL;
	event_free(b->resume);
	free(b);
}

int listen_tcp_start(struct server *s, const struct url *u, const char *text)
{
	if (s->nlisteners == OPT_MAX_LISTEN)
		return -ENOSPC;
	char port[16];
	snprintf(port, sizeof(port), "%d", u->port);
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE }, *res;
	if (getaddrinfo(u->host, port, &hints, &res)) {
		log_error("--listen %s: cannot resolve host", text);
		return -EINVAL;
	}
	/* ?node=N wins; else the node of the device owning the address. */
	struct tcp_listener *tl = &tcp_listeners[s->nlisteners];
	tl->s = s;
	tl->node = u->node >= 0 ? u->node : numa_node_of_sockaddr(res->ai_addr);
	struct evconnlistener *l = evconnlistener_new_bind(
		s->base, on_accept, tl, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC,
		512, res->ai_addr, (int)res->ai_addrlen);
	freeaddrinfo(res);
	if (!l) {
		log_error("--listen %s: %s", text, strerror(errno));
		return -errno;
	}
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	getsockname(evconnlistener_get_fd(l), (struct sockaddr *)&ss, &len);
	struct url bound = *u;
	bound.port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
						    : ((struct sockaddr_in *)&ss)->sin_port);
	if (!s->tcp_port)
		s->tcp_port = bound.port;
	char shown[300];
	url_format(&bound, shown, sizeof(shown));
	if (!(tl->backoff = listen_backoff_attach(l, s->base, shown))) {
		evconnlistener_free(l);
		log_error("--listen %s: out of memory", text);
		return -ENOMEM;
	}
	if (tl->node >= 0)
		log_info("listening on %s (node %d)", shown, tl->node);
	else
		log_info("listening on %s", shown);
	s->listeners[s->nlisteners++] = l;
	return 0;
}

void listen_tcp_pause(struct server *s)
{
	for (int i = 0; i < s->nlisteners; i++)
		listen_backoff_pause(tcp_listeners[i].backoff);
}

void listen_tcp_stop(struct server *s)
{
	for (int i = 0; i < s->nlisteners; i++) {
		evconnlistener_free(s->listeners[i]);
		listen_backoff_free(tcp_listeners[i].backoff);
		memset(&tcp_listeners[i], 0, sizeof(tcp_listeners[i]));
	}
	s->nlisteners = 0;
}
