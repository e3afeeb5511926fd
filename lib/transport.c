/* SPDX-License-Identifier: MIT */
#include "transport.h"

#include <errno.h>
#include <string.h>

static const struct transport_ops *const transports[] = {
	&transport_tcp_ops,
};

int transport_connect(const char *text, int timeout_ms, struct transport **out)
{
	struct url u;
	if (url_parse(text, URL_DEFAULT_PORT, &u) || u.port == 0)
		return -EINVAL;
	for (size_t i = 0; i < sizeof(transports) / sizeof(transports[0]); i++)
		if (!strcmp(transports[i]->scheme, u.scheme))
			return transports[i]->connect(&u, timeout_ms, out);
	return -EPROTONOSUPPORT;
}
