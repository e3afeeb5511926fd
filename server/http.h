/* SPDX-License-Identifier: MIT */
/*
 * The HTTP endpoint (its own thread): GET /metrics in the Prometheus text
 * format, GET /healthz; at most --metrics-max-connections open at once.
 */
#ifndef SPILLWAY_HTTP_H
#define SPILLWAY_HTTP_H

struct server;
struct http;
struct metrics;

/* Its counter (connections refused at the cap). 0 or -ENOMEM. */
int http_register_metrics(struct metrics *m);

/* addr "HOST:PORT" (port 0 picks one). 0 or -errno; *port gets the bound port. */
int http_start(struct server *s, const char *addr, struct http **out, int *port);
void http_stop(struct http *h);

#endif
