/* SPDX-License-Identifier: MIT */
/*
 * The HTTP endpoint, on its own thread and event base: GET /metrics and
 * GET /healthz, one request per connection (the reply says Connection:
 * close; Prometheus and curl expect nothing more).
 *
 * A small reader of its own rather than evhttp: evhttp in libevent 2.1 has
 * no cap on open connections, and every connection holds a descriptor the
 * data plane may need. Here a connection is accepted only while fewer than
 * --metrics-max-connections are open (the rest are closed at once and
 * counted); within --handshake-timeout of its accept, a deadline that no
 * trickle of bytes moves, it must send its whole request head (at most
 * HTTP_MAX_HEAD_BYTES) and read its whole reply, or it is closed.
 * Memory: at most that many request heads and rendered replies.
 */
#include "http.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <urcu.h>

#include "listen_tcp.h"
#include "log.h"
#include "metrics.h"
#include "server.h"
#include "url.h"

/* A scrape is a GET with a few short headers and no body. */
#define HTTP_MAX_HEAD_BYTES (16 * 1024)

struct http {
	struct server *srv;
	struct event_base *base;
	struct evconnlistener *listener;
	pthread_t thread;
	atomic_int stop;
	struct listen_backoff *backoff;
	unsigned open, max_open;  /* touched on the http thread only */
	struct http_conn *conns;  /* the open ones, freed at stop */
	struct timeval timeout;
};

static atomic_uint_fast64_t http_refused; /* closed at accept: cap reached */

struct http_conn {
	struct http *h;
	struct bufferevent *bev;
	struct event *deadline;   /* accept + --handshake-timeout */
	struct http_conn *next, **pprev;
};

static void conn_free(struct http_conn *hc)
{
	hc->h->open--;
	if (hc->next)
		hc->next->pprev = hc->pprev;
	*hc->pprev = hc->next;
	if (hc->deadline)
		event_free(hc->deadline);
	bufferevent_free(hc->bev);
	free(hc);
}

/* Queue the whole reply, stop reading; on_written closes once it is out. */
static void reply(struct http_conn *hc, int code, const char *reason, const char *type,
		  const char *body, size_t len)
{
	struct evbuffer *out = bufferevent_get_output(hc->bev);
	bufferevent_disable(hc->bev, EV_READ);
	if (evbuffer_add_printf(out,
				"HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
				"Connection: close\r\n\r\n",
				code, reason, type, len) < 0 ||
	    evbuffer_add(out, body, len)) {
		conn_free(hc);
		return;
	}
	bufferevent_enable(hc->bev, EV_WRITE);
}

static void reply_text(struct http_conn *hc, int code, const char *reason, const char *text)
{
	reply(hc, code, reason, "text/plain", text, strlen(text));
}

/* The request line "METHOD SP TARGET SP HTTP/x.y": answer it. */
static void serve(struct http_conn *hc, char *line)
{
	char *method = line, *target = strchr(line, ' ');
	char *version = target ? strchr(target + 1, ' ') : NULL;
	if (!target || !version || strncmp(version + 1, "HTTP/1.", 7)) {
		reply_text(hc, 400, "Bad Request", "bad request line\n");
		return;
	}
	*target++ = '\0';
	*version = '\0';
	target[strcspn(target, "?#")] = '\0';
	if (strcmp(method, "GET")) {
		reply_text(hc, 405, "Method Not Allowed", "only GET\n");
	} else if (!strcmp(target, "/metrics")) {
		size_t len;
		char *text = metrics_render(hc->h->srv->metrics, &len);
		if (!text) {
			reply_text(hc, 500, "Internal Server Error", "out of memory\n");
			return;
		}
		reply(hc, 200, "OK", "text/plain; version=0.0.4", text, len);
		free(text);
	} else if (!strcmp(target, "/healthz")) {
		reply_text(hc, 200, "OK", "ok\n");
	} else {
		reply_text(hc, 404, "Not Found", "try /metrics or /healthz\n");
	}
}

static void on_read(struct bufferevent *bev, void *arg)
{
	struct http_conn *hc = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	struct evbuffer_ptr end = evbuffer_search(in, "\r\n\r\n", 4, NULL);
	if (end.pos < 0)
		end = evbuffer_search(in, "\n\n", 2, NULL);
	if (end.pos < 0) {
		if (evbuffer_get_length(in) > HTTP_MAX_HEAD_BYTES)
			reply_text(hc, 431, "Request Header Fields Too Large", "request too large\n");
		return;
	}
	if ((size_t)end.pos > HTTP_MAX_HEAD_BYTES) {
		reply_text(hc, 431, "Request Header Fields Too Large", "request too large\n");
		return;
	}
	size_t n;
	char *line = evbuffer_readln(in, &n, EVBUFFER_EOL_CRLF);
	if (!line || strlen(line) != n) { /* a NUL inside: not a request line */
		free(line);
		reply_text(hc, 400, "Bad Request", "bad request line\n");
		return;
	}
	serve(hc, line);
	free(line);
}

static void on_written(struct bufferevent *bev, void *arg)
{
	(void)bev;
	conn_free(arg);
}

/* End of stream, or an error. */
static void on_event(struct bufferevent *bev, short what, void *arg)
{
	(void)bev;
	(void)what;
	conn_free(arg);
}

/* Head not sent, or reply not read, in time. */
static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	conn_free(arg);
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
		      int salen, void *arg)
{
	(void)l;
	(void)sa;
	(void)salen;
	struct http *h = arg;
	struct http_conn *hc = NULL;
	if (h->open >= h->max_open) {
		metrics_inc(&http_refused, 1);
		evutil_closesocket(fd);
		return;
	}
	hc = calloc(1, sizeof(*hc));
	if (hc)
		hc->bev = bufferevent_socket_new(h->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (hc && hc->bev)
		hc->deadline = evtimer_new(h->base, on_deadline, hc);
	if (!hc || !hc->bev || !hc->deadline) {
		if (hc && hc->bev)
			bufferevent_free(hc->bev); /* closes fd */
		else
			evutil_closesocket(fd);
		free(hc);
		return;
	}
	hc->h = h;
	h->open++;
	hc->next = h->conns;
	if (h->conns)
		h->conns->pprev = &hc->next;
	hc->pprev = &h->conns;
	h->conns = hc;
	bufferevent_setcb(hc->bev, on_read, on_written, on_event, hc);
	evtimer_add(hc->deadline, &h->timeout);
	/* Output below 1 byte means all of it is out: then on_written runs. */
	bufferevent_setwatermark(hc->bev, EV_WRITE, 0, 0);
	bufferevent_enable(hc->bev, EV_READ);
	bufferevent_disable(hc->bev, EV_WRITE);
}

int http_register_metrics(struct metrics *m)
{
	return metrics_add_counter(m, "spillway_metrics_connections_refused_total", "",
				   "Connections to --metrics closed at accept: "
				   "--metrics-max-connections were open",
				   &http_refused);
}

/* A break requested before the loop runs is forgotten when it starts, so the
 * loop also looks at the stop flag itself a few times a second. */
static void check_stop(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct http *h = arg;
	if (atomic_load(&h->stop))
		event_base_loopbreak(h->base);
}

static void *http_main(void *arg)
{
	struct http *h = arg;
	/* Gauges read registry totals, which use RCU read-side sections. */
	rcu_register_thread();
	struct event *tick = event_new(h->base, -1, EV_PERSIST, check_stop, h);
	const struct timeval every = { 0, 200 * 1000 };
	if (tick)
		event_add(tick, &every);
	if (!atomic_load(&h->stop))
		event_base_dispatch(h->base);
	if (tick)
		event_free(tick);
	rcu_unregister_thread();
	return NULL;
}

static void http_free(struct http *h)
{
	while (h->conns)
		conn_free(h->conns);
	listen_backoff_free(h->backoff);
	if (h->listener)
		evconnlistener_free(h->listener);
	if (h->base)
		event_base_free(h->base);
	free(h);
}

int http_start(struct server *s, const char *addr, struct http **out, int *port)
{
	struct url u;
	if (url_parse(addr, 9707, &u) || strcmp(u.scheme, "tcp")) {
		log_error("--metrics %s: expected HOST:PORT or none", addr);
		return -EINVAL;
	}
	struct http *h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	h->srv = s;
	h->max_open = s->opt.metrics_max_conns;
	/* A scraper that says nothing for the handshake time is gone. */
	h->timeout = (struct timeval){ (time_t)s->opt.handshake_timeout_s, 0 };
	h->base = event_base_new();
	struct evutil_addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
					 .ai_flags = EVUTIL_AI_PASSIVE | EVUTIL_AI_NUMERICSERV };
	struct evutil_addrinfo *ai = NULL;
	char service[8];
	snprintf(service, sizeof(service), "%d", u.port);
	if (!h->base || evutil_getaddrinfo(u.host, service, &hints, &ai) || !ai) {
		log_error("metrics: cannot resolve %s", addr);
		goto fail;
	}
	h->listener = evconnlistener_new_bind(h->base, on_accept, h,
					      LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE |
						      LEV_OPT_CLOSE_ON_EXEC,
					      128, ai->ai_addr, (int)ai->ai_addrlen);
	evutil_freeaddrinfo(ai);
	if (!h->listener) {
		log_error("metrics: cannot listen on %s: %s", addr, strerror(errno));
		goto fail;
	}
	/* Out of descriptors, the metrics listener would spin like any other. */
	if (!(h->backoff = listen_backoff_attach(h->listener, h->base, "metrics")))
		goto fail;
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	if (getsockname(evconnlistener_get_fd(h->listener), (struct sockaddr *)&ss, &len) == 0)
		*port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
						     : ((struct sockaddr_in *)&ss)->sin_port);
	if (pthread_create(&h->thread, NULL, http_main, h))
		goto fail;
	*out = h;
	return 0;
fail:
	http_free(h);
	return -EADDRINUSE;
}

void http_stop(struct http *h)
{
	if (!h)
		return;
	atomic_store(&h->stop, 1);
	event_base_loopbreak(h->base);
	pthread_join(h->thread, NULL);
	http_free(h);
}
