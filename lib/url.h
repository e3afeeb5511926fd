/* SPDX-License-Identifier: MIT */
/* Endpoint URLs: tcp://HOST:PORT, rdma://HOST:PORT, HOST:PORT (tcp). */
#ifndef SPILLWAY_URL_H
#define SPILLWAY_URL_H

#define URL_DEFAULT_PORT 7707
#define URL_HOST_MAX 256

struct url {
	char scheme[8];          /* "tcp" or "rdma" */
	char host[URL_HOST_MAX]; /* without IPv6 brackets */
	int port;                /* 0..65535; 0 = pick a free port (listen only) */
};

/* 0 or -EINVAL. A missing port takes default_port. */
int url_parse(const char *text, int default_port, struct url *out);
/* "tcp://127.0.0.1:7707", with brackets for IPv6. */
void url_format(const struct url *u, char *buf, int cap);

#endif
