/* SPDX-License-Identifier: MIT */
#include "url.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int url_parse(const char *text, int default_port, struct url *out)
{
	memset(out, 0, sizeof(*out));
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
	if (port) {
		char *end;
		long p = strtol(port, &end, 10);
		if (!*port || *end || p < 0 || p > 65535)
			return -EINVAL;
		out->port = (int)p;
	} else {
		out->port = default_port;
	}
	return 0;
}

void url_format(const struct url *u, char *buf, int cap)
{
	int v6 = strchr(u->host, ':') != NULL;
	snprintf(buf, (size_t)cap, "%s://%s%s%s:%d", u->scheme, v6 ? "[" : "",
		 u->host, v6 ? "]" : "", u->port);
}
