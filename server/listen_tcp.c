/* SPDX-License-Identifier: MIT */
/*
 * tcp:// listeners, in the main thread's loop. Each accepted socket passes
 * admission (admission.c) or is closed at once; an admitted one goes to a
 * worker with its ticket. When accept() runs out of descriptors or memory
 * the listener is disabled for --accept-backoff-ms by a timer, never
 * retried in a loop, and the timer re-enables it unless shutdown began.
 */
#include "listen_tcp.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/listener.h>

#include "admission.h"
#include "log.h"
#include "numa_place.h"
#include "server.h"
#include "worker.h"

/* What the callbacks need to know about their listener. */
struct tcp_listener {
	struct server *s;
	struct evconnlistener *l;
	struct event *resume;   /* back-off timer */
	int node;               /* NUMA node its connections prefer, or -1 */
	int paused;             /* shutdown began: the timer must not resume it */
	char name[300];         /* its URL, for messages */
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
	struct conn_origin o = { .fd = fd, .node = tl->node };
	const char *why;
	if (admission_enter(sa, &o.adm, &why)) {
		close(fd); /* counted and logged (rate-limited) by admission */
		return;
	}
	peer_text(sa, o.peer, sizeof(o.peer));
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	workers_hand_off(tl->s, &o);
}

static void on_resume(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct tcp_listener *tl = arg;
	if (!tl->paused)
		evconnlistener_enable(tl->l);
}

/* accept() failed for a reason that is not "try again". */
static void on_accept_error(struct evconnlistener *l, void *arg)
{
	struct tcp_listener *tl = arg;
	int err = EVUTIL_SOCKET_ERROR();
	unsigned ms = admission_accept_failed(tl->name, err);
	if (!ms) {
		log_warn("%s: accept: %s", tl->name, strerror(err));
		return;
	}
	/* The pending connection stays in the backlog; the socket stays
	 * readable, so waiting means not watching it for a while. */
	evconnlistener_disable(l);
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
	evtimer_add(tl->resume, &tv);
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
	tl->resume = evtimer_new(s->base, on_resume, tl);
	struct evconnlistener *l = tl->resume ? evconnlistener_new_bind(
		s->base, on_accept, tl, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC,
		512, res->ai_addr, (int)res->ai_addrlen) : NULL;
	freeaddrinfo(res);
	if (!l) {
		int e = tl->resume ? errno : ENOMEM;
		log_error("--listen %s: %s", text, strerror(e));
		if (tl->resume)
			event_free(tl->resume);
		tl->resume = NULL;
		return -e;
	}
	tl->l = l;
	evconnlistener_set_error_cb(l, on_accept_error);
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
	snprintf(tl->name, sizeof(tl->name), "%s", shown);
	if (tl->node >= 0)
		log_info("listening on %s (node %d)", shown, tl->node);
	else
		log_info("listening on %s", shown);
	s->listeners[s->nlisteners++] = l;
	return 0;
}

void listen_tcp_pause(struct server *s)
{
	for (int i = 0; i < s->nlisteners; i++) {
		tcp_listeners[i].paused = 1;
		evtimer_del(tcp_listeners[i].resume);
		evconnlistener_disable(s->listeners[i]);
	}
}

void listen_tcp_stop(struct server *s)
{
	for (int i = 0; i < s->nlisteners; i++) {
		evconnlistener_free(s->listeners[i]);
		event_free(tcp_listeners[i].resume);
		memset(&tcp_listeners[i], 0, sizeof(tcp_listeners[i]));
	}
	s->nlisteners = 0;
}
