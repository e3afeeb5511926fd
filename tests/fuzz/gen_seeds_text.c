/* SPDX-License-Identifier: MIT */
/*
 * Seeds for the text parsers: fuzz_config (config files: every spillwayd
 * key, [client NAME] and [export NAME] sections, comments, near misses)
 * and fuzz_url (each URL form and option; byte 0 picks the default port).
 */
#include <stdio.h>
#include <string.h>

#include "gen_corpus.h"

static void text(const char *dir, const char *name, const char *body)
{
	seed_put(dir, name, body, strlen(body), NULL, 0);
}

void seeds_config(const char *dir)
{
	text(dir, "server",
	     "# spillwayd\n"
	     "listen = tcp://127.0.0.1:7707\n"
	     "listen = rdma://10.0.0.1:7708?node=1\n"
	     "capacity = 512M\n"
	     "extent-size = 2MiB\n"
	     "numa-nodes = 0-1\n"
	     "psk-file = /etc/spillway/psk\n"
	     "admin-psk-file = /etc/spillway/admin\n"
	     "metrics = none\n"
	     "mlock = true\n"
	     "hugetlb = no\n"
	     "grace = 60\n"
	     "workers = 2\n"
	     "max-inflight = 64\n"
	     "log-level = warn\n"
	     "nbd = 127.0.0.1:10809\n"
	     "nbd-insecure = 0\n");
	text(dir, "cluster",
	     "advertise = tcp://10.0.0.2:7707\n"
	     "peer = tcp://10.0.0.3:7707\n"
	     "peer = 10.0.0.4\n"
	     "arbiter = yes\n"
	     "report-interval-ms = 500\n"
	     "high-watermark = 90\n"
	     "low-watermark = 80\n"
	     "reclaim-deadline-ms = 10000\n");
	text(dir, "quotas",
	     "capacity = 1G\n"
	     "[client db1]\n"
	     "priority = -5\n"
	     "reservation = 64M\n"
	     "limit = 1G   # trailing comment\n"
	     "\n"
	     "[ client batch ]\n"
	     "priority = 1000\n"
	     "[export disk0]\n"
	     "size = 1G\n"
	     "client = db1\n"
	     "[export disk1]\n"
	     "size = 4096\n");
	text(dir, "sizes", "capacity = 18446744073709551615\nextent-size = 4K\n"
			   "capacity = 16383T\n");
	text(dir, "bad-section", "[client bad name]\npriority = 1\n");
	text(dir, "bad-line", "capacity\n");
	text(dir, "bad-export", "[export x]\nclient = y\n");
	text(dir, "stop", "grace = 1\nstop = here\nworkers = 3\n");
	char big[1100];
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	memcpy(big, "metrics = ", 10);
	text(dir, "long-line", big);
	text(dir, "no-newline", "workers = 1");
}

void seeds_url(const char *dir)
{
	static const char *const urls[] = {
		"tcp://127.0.0.1:7707",
		"rdma://10.0.0.1:7708?node=1",
		"rdma://[fe80::1%eth0]:7708?fallback=tcp://10.0.0.1:7707&source=10.0.0.9",
		"[::1]:0",
		"localhost",
		"rdma://h?node=1023&source=::1",
		"tcp://h:1?node=",
		"h:65535&",
		"unix:///run/spillway/admin.sock",
	};
	for (size_t i = 0; i < sizeof(urls) / sizeof(urls[0]); i++) {
		char name[16];
		uint8_t port = (uint8_t)i;
		snprintf(name, sizeof(name), "url-%zu", i);
		seed_put(dir, name, &port, 1, urls[i], strlen(urls[i]));
	}
}
