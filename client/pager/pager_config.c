/* SPDX-License-Identifier: MIT */
/*
 * struct spill_config plus the environment: whatever the struct leaves unset
 * comes from SPILLWAY_SERVERS, SPILLWAY_PSK_FILE, SPILLWAY_LOCAL_BUDGET,
 * SPILLWAY_NAME, SPILLWAY_REPLICAS and SPILLWAY_FAULT_MODE. SPILLWAY_DISCOVER=0
 * turns cluster discovery off (environment only: the struct has no room).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "pager.h"
#include "pager_config.h"

#define DEFAULT_BUDGET (64ull << 20)

static int bad(char *err, size_t cap, const char *what, const char *value)
{
	snprintf(err, cap, "%s: invalid value '%s'", what, value);
	return -SPILL_EBADCONFIG;
}

int pager_config_resolve(spill_ctx *x, const struct spill_config *in, char *err, size_t cap)
{
	if (in)
		x->cfg = *in;
	struct spill_config *c = &x->cfg;
	const char *v;

	int n = 0;
	if (c->nservers > 0 || c->servers[0]) {
		while (n < SPILL_MAX_SERVERS && (n < c->nservers || (c->nservers == 0 && c->servers[n])) &&
		       c->servers[n])
			x->urls[n] = strdup(c->servers[n]), n++;
	} else if ((v = getenv("SPILLWAY_SERVERS")) && *v) {
		char *copy = strdup(v), *save = NULL;
		for (char *tok = strtok_r(copy, ", ", &save); tok && n < SPILL_MAX_SERVERS;
		     tok = strtok_r(NULL, ", ", &save))
			x->urls[n++] = strdup(tok);
		free(copy);
	}
	if (n == 0) {
		snprintf(err, cap, "no server: set spill_config.servers or SPILLWAY_SERVERS");
		return -SPILL_ENOSERVERS;
	}
	x->nservers = n;

	if (!c->psk_file && (v = getenv("SPILLWAY_PSK_FILE")) && *v)
		c->psk_file = v;
	if (c->local_budget == 0) {
		uint64_t b = DEFAULT_BUDGET;
		if ((v = getenv("SPILLWAY_LOCAL_BUDGET")) && *v && config_parse_size(v, &b))
			return bad(err, cap, "SPILLWAY_LOCAL_BUDGET", v);
		c->local_budget = b;
	}
	if (c->local_budget < 16 * PG_SIZE) {
		snprintf(err, cap, "local budget %zu bytes is below the 64 KiB minimum",
			 c->local_budget);
		return -SPILL_EBADCONFIG;
	}
	if (!c->name && (v = getenv("SPILLWAY_NAME")) && *v)
		c->name = v;
	if (!c->name) {
		char host[40] = "host";
		gethostname(host, sizeof(host) - 1);
		host[sizeof(host) - 1] = 0;
		for (char *p = host; *p; p++)
			if (!(*p == '-' || *p == '.' || (*p >= '0' && *p <= '9') ||
			      (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')))
				*p = '-';
		snprintf(x->namebuf, sizeof(x->namebuf), "spill-%s-%d", host, (int)getpid());
		c->name = x->namebuf;
	}
	if (!ctrl_name_valid(c->name)) {
		snprintf(err, cap, "client name '%s' is not 1-64 of [A-Za-z0-9._:-]", c->name);
		return -SPILL_EBADCONFIG;
	}
	if (c->priority < CTRL_PRIORITY_MIN || c->priority > CTRL_PRIORITY_MAX) {
		snprintf(err, cap, "priority %d outside -1000..1000", c->priority);
		return -SPILL_EBADCONFIG;
	}
	if (c->replicas == 0) {
		long r = 1;
		if ((v = getenv("SPILLWAY_REPLICAS")) && *v &&
		    config_parse_int(v, 1, MAX_REPLICAS, &r))
			return bad(err, cap, "SPILLWAY_REPLICAS", v);
		c->replicas = (int)r;
	}
	if (c->replicas < 1 || c->replicas > MAX_REPLICAS) {
		snprintf(err, cap, "replicas %d outside 1..%d", c->replicas, MAX_REPLICAS);
		return -SPILL_EBADCONFIG;
	}
	x->replicas = c->replicas; /* checked against the servers once they are known */
	x->discover = 1;
	if ((v = getenv("SPILLWAY_DISCOVER")) && *v) {
		long d;
		if (config_parse_int(v, 0, 1, &d))
			return bad(err, cap, "SPILLWAY_DISCOVER", v);
		x->discover = (int)d;
	}
	if (c->fault_mode == SPILL_FAULT_DEFAULT && (v = getenv("SPILLWAY_FAULT_MODE")) && *v) {
		if (!strcmp(v, "inthread"))
			c->fault_mode = SPILL_FAULT_INTHREAD;
		else if (!strcmp(v, "handler"))
			c->fault_mode = SPILL_FAULT_HANDLER;
		else
			return bad(err, cap, "SPILLWAY_FAULT_MODE", v);
	}
	/* The default is the mode measured faster (docs/benchmarks.md). */
	x->mode = c->fault_mode == SPILL_FAULT_HANDLER ? SPILL_FAULT_HANDLER : SPILL_FAULT_INTHREAD;
	if (c->fault_mode > SPILL_FAULT_HANDLER) {
		snprintf(err, cap, "fault_mode %d unknown", (int)c->fault_mode);
		return -SPILL_EBADCONFIG;
	}
	if (c->timeout_ms <= 0)
		c->timeout_ms = 5000;
	return 0;
}

void pager_config_free(spill_ctx *x)
{
	for (int i = 0; i < x->nservers; i++)
		free(x->urls[i]);
}
