/* SPDX-License-Identifier: MIT */
/*
 * transport_connect: the URL scheme picks the connector; an rdma:// URL may
 * name a TCP fallback.
 */
#include "transport.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static const struct transport_ops *const transports[] = {
	&transport_tcp_ops,
	&transport_rdma_ops,
	&transport_unix_ops,
};

static int connect_url(const struct url *u, const struct transport_params *p,
		       struct stream **out)
{
	for (size_t i = 0; i < sizeof(transports) / sizeof(transports[0]); i++)
		if (!strcmp(transports[i]->scheme, u->scheme))
			return transports[i]->connect(u, p, out);
	return -EPROTONOSUPPORT;
}

int transport_connect(const char *text, const struct transport_params *p,
		      struct stream **out)
{
	struct url u;
	if (p->why && p->why_cap)
		p->why[0] = 0;
	if (url_parse(text, URL_DEFAULT_PORT, &u) || (u.port == 0 && strcmp(u.scheme, "unix")))
		return -EINVAL;
	int rc = connect_url(&u, p, out);
	if (rc == 0 || !u.fallback[0])
		return rc;
	/* RDMA setup failed: say why, then try the TCP address given. */
	char first[256] = "";
	if (p->why)
		snprintf(first, sizeof(first), "%s", p->why[0] ? p->why : strerror(-rc));
	struct url fb;
	if (url_parse(u.fallback, URL_DEFAULT_PORT, &fb))
		return rc;
	int frc = connect_url(&fb, p, out);
	if (p->why && p->why_cap)
		snprintf(p->why, p->why_cap, "%s (%s %s)", first,
			 frc ? "and fallback failed:" : "fell back to", u.fallback);
	return frc;
}
