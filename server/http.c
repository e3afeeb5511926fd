/* SPDX-License-Identifier: MIT */
#include "http.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <urcu.h>

#include "listen_tcp.h"
#include "log.h"
#include "server.h"
#include "url.h"

/* A scrape is a GET with a few short headers and no body. evhttp's own
 * defaults are no limit on either, so one request whose header never ends
 * would grow without bound (a byte now and then keeps its read timeout
 * fresh); past these the request gets 400/413 and the connection closes. */
#define HTTP_MAX_HEADERS_BYTES (16 * 1024)
#define HTTP_MAX_BODY_BYTES    1024

struct http {
	struct server *srv;
	struct event_base *base;
	struct evhttp *http;
	pthread_t thread;
	atomic_int stop;
	struct listen_backoff *backoff;
};

static void send_text(struct evhttp_request *req, int code, const char *reason,
		      const char *type, const char *body, size_t len)
{
	struct evbuffer *b = evbuffer_new();
	if (!b) {
		evhttp_send_error(req, 500, "out of memory");
		return;
	}
	evbuffer_add(b, body, len);
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", type);
	evhttp_send_reply(req, code, reason, b);
	evbuffer_free(b);
}

static void on_request(struct evhttp_request *req, void *arg)
{
	struct http *h = arg;
	const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
	if (evhttp_request_get_command(req) != EVHTTP_REQ_GET) {
		evhttp_send_error(req, 405, "only GET");
		return;
	}
	if (path && !strcmp(path, "/metrics")) {
		size_t len;
		char *text = metrics_render(h->srv->metrics, &len);
		if (!text) {
			evhttp_send_error(req, 500, "out of memory");
			return;
		}
		send_text(req, 200, "OK", "text/plain; version=0.0.4", text, len);
		free(text);
	} else if (path && !strcmp(path, "/healthz")) {
		send_text(req, 200, "OK", "text/plain", "ok\n", 3);
	} else {
		evhttp_send_error(req, 404, "try /metrics or /healthz");
	}
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
	h->base = event_base_new();
	h->http = h->base ? evhttp_new(h->base) : NULL;
	if (!h->http)
		goto fail;
	evhttp_set_gencb(h->http, on_request, h);
	evhttp_set_max_headers_size(h->http, HTTP_MAX_HEADERS_BYTES);
	evhttp_set_max_body_size(h->http, HTTP_MAX_BODY_BYTES);
	/* A scraper that says nothing for the handshake time is gone. */
	evhttp_set_timeout(h->http, (int)s->opt.handshake_timeout_s);
	struct evhttp_bound_socket *sock =
		evhttp_bind_socket_with_handle(h->http, u.host, (uint16_t)u.port);
	if (!sock) {
		log_error("metrics: cannot listen on %s", addr);
		goto fail;
	}
	/* Out of descriptors, the metrics listener would spin like any other. */
	if (!(h->backoff = listen_backoff_attach(evhttp_bound_socket_get_listener(sock), h->base,
						 "metrics")))
		goto fail;
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	if (getsockname(evhttp_bound_socket_get_fd(sock), (struct sockaddr *)&ss, &len) == 0)
		*port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
						     : ((struct sockaddr_in *)&ss)->sin_port);
	if (pthread_create(&h->thread, NULL, http_main, h))
		goto fail;
	*out = h;
	return 0;
fail:
	listen_backoff_free(h->backoff);
	if (h->http)
		evhttp_free(h->http);
	if (h->base)
		event_base_free(h->base);
	free(h);
	return -EADDRINUSE;
}

void http_stop(struct http *h)
{
	if (!h)
		return;
	atomic_store(&h->stop, 1);
	event_base_loopbreak(h->base);
	pthread_join(h->thread, NULL);
	listen_backoff_free(h->backoff);
	evhttp_free(h->http);
	event_base_free(h->base);
	free(h);
}
