/* SPDX-License-Identifier: MIT */
/*
 * Endpoint URLs: tcp://HOST:PORT, rdma://HOST:PORT, HOST:PORT (tcp), each
 * with optional options after '?', joined by '&'; and unix:///PATH, a local
 * socket (a server's admin socket), which takes no options:
 *   node=N          listeners: the NUMA node whose pool and worker the
 *                   connections accepted here prefer (default: the node of
 *                   the device, when the kernel knows it)
 *   fallback=URL    clients of rdma://: where to connect instead when RDMA
 *                   setup fails (a tcp:// URL; it takes no options itself)
 *   source=ADDR     clients of rdma://: the local address (so the RDMA
 *                   device) to connect from, as perftest's --source_ip
 */
#ifndef SPILLWAY_URL_H
#define SPILLWAY_URL_H

#define URL_DEFAULT_PORT 7707
#define URL_HOST_MAX 256
#define URL_UNIX_PATH_MAX 108 /* sun_path, with its NUL */

struct url {
	char scheme[8];          /* "tcp", "rdma" or "unix" */
	char host[URL_HOST_MAX]; /* without IPv6 brackets; unix: the path */
	int port;                /* 0..65535; 0 = pick a free port (listen only) */
	int node;                /* node=, or -1 */
	char fallback[URL_HOST_MAX + 16]; /* fallback=, or "" */
	char source[URL_HOST_MAX];        /* source=, or "" */
};

/* 0 or -EINVAL (also for an unknown option). A missing port takes default_port. */
int url_parse(const char *text, int default_port, struct url *out);
/* "tcp://127.0.0.1:7707", with brackets for IPv6 (options left out);
 * "unix:///PATH". */
void url_format(const struct url *u, char *buf, int cap);

#endif
