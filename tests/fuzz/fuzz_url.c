/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for endpoint URLs (lib/url.c).
 *
 * Input: byte 0 picks the default port, the rest is the URL text (cut at the
 * first NUL). url_parse must never crash or overrun; what it accepts must
 * obey struct url's rules (scheme tcp or rdma, a non-empty host, port and
 * node in range, fallback= a tcp URL, source= only on rdma; or unix with an
 * absolute path that fits sun_path and nothing else), and format to a
 * URL that parses back to the same scheme, host and port (url_format leaves
 * the options out, so those come back at their defaults).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "url.h"

static void check_accepted(const struct url *u)
{
	CHECK(memchr(u->host, 0, sizeof(u->host)) != NULL);
	CHECK(u->host[0] != '\0');
	if (!strcmp(u->scheme, "unix")) {
		/* A socket path: absolute, fits sun_path, no port or options. */
		CHECK(u->host[0] == '/' && strlen(u->host) < URL_UNIX_PATH_MAX);
		CHECK(u->port == 0 && u->node == -1 && !u->fallback[0] && !u->source[0]);
		return;
	}
	CHECK(!strcmp(u->scheme, "tcp") || !strcmp(u->scheme, "rdma"));
	CHECK(u->port >= 0 && u->port <= 65535);
	CHECK(u->node >= -1 && u->node <= 1023);
	CHECK(memchr(u->fallback, 0, sizeof(u->fallback)) != NULL);
	CHECK(memchr(u->source, 0, sizeof(u->source)) != NULL);
	if (u->fallback[0]) {
		struct url fb;
		CHECK(url_parse(u->fallback, 0, &fb) == 0);
		CHECK(!strcmp(fb.scheme, "tcp"));
	}
	if (u->source[0])
		CHECK(!strcmp(u->scheme, "rdma"));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	static const int ports[] = { 7707, 0, 1, 65535 };
	int default_port = ports[data[0] % 4];
	size_t n = size - 1;
	char *text = malloc(n + 1);
	if (!text)
		return 0;
	memcpy(text, data + 1, n);
	text[n] = '\0';

	struct url u, back;
	if (url_parse(text, default_port, &u) == 0) {
		check_accepted(&u);
		char shown[URL_HOST_MAX + 64];
		url_format(&u, shown, sizeof(shown));
		if (url_parse(shown, -1, &back)) {
			fprintf(stderr, "'%s' parsed, but its form '%s' does not\n", text, shown);
			abort();
		}
		check_accepted(&back);
		CHECK(!strcmp(back.scheme, u.scheme));
		CHECK(!strcmp(back.host, u.host));
		CHECK(back.port == u.port);
		CHECK(back.node == -1 && !back.fallback[0] && !back.source[0]);
		/* Formatting is a fixed point after one round. */
		char again[sizeof(shown)];
		url_format(&back, again, sizeof(again));
		CHECK(!strcmp(again, shown));
	}
	free(text);
	return 0;
}
