/* SPDX-License-Identifier: MIT */
#include "url.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int parse_options(const char *q, struct url *out)
{
	if (!*q)
		return -EINVAL;
	while (*q) {
		const char *end = strchr(q, '&');
		size_t len = end ? (size_t)(end - q) : strlen(q);
		const char *eq = memchr(q, '=', len);
		if (!eq)
			return -EINVAL;
		size_t klen = (size_t)(eq - q), vlen = len - klen - 1;
		const char *v = eq + 1;
		if (klen == 4 && !memcmp(q, "node", 4)) {
			char num[12], *e;
			if (vlen == 0 || vlen >= sizeof(num))
				return -EINVAL;
			memcpy(num, v, vlen);
			num[vlen] = 0;
			long n = strtol(num, &e, 10);
			if (*e || n < 0 || n > 1023)
				return -EINVAL;
			out->node = (int)n;
		} else if (klen == 8 && !memcmp(q, "fallback", 8)) {
			if (vlen == 0 || vlen >= sizeof(out->fallback))
				return -EINVAL;
			memcpy(out->fallback, v, vlen);
			out->fallback[vlen] = 0;
			struct url fb;
			if (url_parse(out->fallback, 0, &fb) || strcmp(fb.scheme, "tcp") ||
			    strchr(out->fallback, '?'))
				return -EINVAL;
		} else if (klen == 6 && !memcmp(q, "source", 6)) {
			/* An address, never a name or URL: brackets and '/' stay out. */
			if (vlen == 0 || vlen >= sizeof(out->source) || memchr(v, '/', vlen) ||
			    memchr(v, '[', vlen))
				return -EINVAL;
			memcpy(out->source, v, vlen);
			out->source[vlen] = 0;
		} else {
			return -EINVAL;
		}
		q += len;
		if (*q == '&' && !*++q)
			return -EINVAL; /* a trailing '&' */
	}
	return 0;
}

/* unix:///PATH: the whole rest is the path, which takes no options. */
static int parse_unix(const char *path, struct url *out)
{
	if (path[0] != '/' || strlen(path) >= URL_UNIX_PATH_MAX)
		return -EINVAL;
	strcpy(out->scheme, "unix");
	strcpy(out->host, path);
	return 0;
}

int url_parse(const char *text, int default_port, struct url *out)
{
	memset(out, 0, sizeof(*out));
	out->node = -1;
	if (!strncmp(text, "unix://", 7))
		return parse_unix(text + 7, out);
	char addr[URL_HOST_MAX + 32];
	const char *q = strchr(text, '?');
	if (q) {
		size_t n = (size_t)(q - text);
		if (n >= sizeof(addr))
			return -EINVAL;
		memcpy(addr, text, n);
		addr[n] = 0;
		text = addr;
	}
	const char *rest = strstr(text, "://");
	if (rest) {
		size_t n = (size_t)(rest - text);
		if (n == 0 || n >= sizeof(out->scheme))
			return -EINVAL;
		memcpy(out->scheme, text, n);
		rest += 3;
	} else {
		strcpy(out->scheme, "tcp");
		rest = text;
	}
	if (strcmp(out->scheme, "tcp") && strcmp(out->scheme, "rdma"))
		return -EINVAL;

	const char *host = rest, *host_end, *port = NULL;
	if (*rest == '[') {
		host = rest + 1;
		host_end = strchr(host, ']');
		if (!host_end)
			return -EINVAL;
		if (host_end[1] == ':')
			port = host_end + 2;
		else if (host_end[1])
			return -EINVAL;
	} else {
		host_end = strrchr(rest, ':');
		if (host_end && strchr(rest, ':') != host_end)
			return -EINVAL; /* bare IPv6 needs brackets */
		if (host_end)
			port = host_end + 1;
		else
			host_end = rest + strlen(rest);
	}
	size_t hl = (size_t)(host_end - host);
	if (hl == 0 || hl >= sizeof(out->host))
		return -EINVAL;
	memcpy(out->host, host, hl);
	/* Brackets only ever delimit an IPv6 host: one inside it could not be
	 * written back as a URL that parses ("[[x]" would format as "[x:PORT"). */
	if (strpbrk(out->host, "[]"))
		return -EINVAL;
	if (port) {
		char *end;
		long p = strtol(port, &end, 10);
		if (!*port || *end || p < 0 || p > 65535)
			return -EINVAL;
		out->port = (int)p;
	} else {
		out->port = default_port;
	}
	if (q && parse_options(q + 1, out))
		return -EINVAL;
	/* A TCP client picks its source by routing; only RDMA takes one. */
	if (out->source[0] && strcmp(out->scheme, "rdma"))
		return -EINVAL;
	return 0;
}

void url_format(const struct url *u, char *buf, int cap)
{
	if (!strcmp(u->scheme, "unix")) {
		snprintf(buf, (size_t)cap, "unix://%s", u->host);
		return;
	}
	int v6 = strchr(u->host, ':') != NULL;
	snprintf(buf, (size_t)cap, "%s://%s%s%s:%d", u->scheme, v6 ? "[" : "",
		 u->host, v6 ? "]" : "", u->port);
}
