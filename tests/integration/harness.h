/* SPDX-License-Identifier: MIT */
/*
 * Integration-test helpers: a real spillwayd on a free loopback port, started
 * with --ready-fd so tests wait for it without sleeping, plus client shortcuts.
 */
#ifndef SPILLWAY_TEST_HARNESS_H
#define SPILLWAY_TEST_HARNESS_H

#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include "client.h"

struct srv {
	pid_t pid;
	int port;
	int metrics_port;
	char url[64];
	char log_path[128];
	char psk_path[128];     /* set by srv_write_psk */
	char config_path[128];  /* set by srv_write_config */
	char admin_url[128];    /* unix:///tmp/...: its admin socket (operator as root) */
};

/*
 * Start spillwayd with --listen tcp://127.0.0.1:0 --metrics 127.0.0.1:0
 * --admin-socket /tmp/... (s->admin_url) plus the NULL-terminated extra
 * arguments. Its stderr goes to s->log_path.
 * Returns 0 once it is serving.
 */
int srv_start(struct srv *s, ...) __attribute__((sentinel));
/* RLIMIT_NOFILE for servers srv_start starts from now on (0: inherit). */
extern unsigned srv_nofile_limit;
/* The TCP port the next srv_start listens on instead of a free one (0: a
 * free one); that srv_start sets it back to 0. To restart a server where
 * its clients look for it. */
extern int srv_next_port;
/* SIGTERM and wait; returns its exit status, or -1 if it died of a signal. */
int srv_stop(struct srv *s);
void srv_kill(struct srv *s);
/* Is text in the server's log? */
int srv_log_has(const struct srv *s, const char *text);
/* A 0600 key file with the given key; path in s->psk_path. */
void srv_write_psk(struct srv *s, const char *key);
/* A config file with the given text; path in s->config_path. */
void srv_write_config(struct srv *s, const char *text);
/* GET path from the metrics endpoint; malloc'ed body or NULL. */
char *srv_http_get(const struct srv *s, const char *path);
/* Value of one Prometheus series line ("name{labels}"), or -1. */
long long srv_metric(const struct srv *s, const char *series);

/* spillwayd flags under which every Register gets the reservation and the
 * priority it asks for: for tests of accounting and arbitration, not of the
 * Register policy (test_srv_policy.c). */
#define POLICY_AS_ASKED "--default-priority", "-1000", "--default-reservation", "1T"

/* Connect to url (connect_as: the server's TCP URL) and register as name
 * (psk may be NULL; name NULL: an unregistered admin session). Fails the
 * test on error. */
struct client *connect_to(const char *url, const char *name, const struct auth_psk *psk);
struct client *connect_as(const struct srv *s, const char *name, const struct auth_psk *psk);
/* Admin status reply (free with ctrl_free). */
Spillway__Ctrl *admin_status(struct client *c);
/* Send a control request whose body (the oneof member for k) is body; the
 * reply, or the test fails. Free with ctrl_free. */
Spillway__Ctrl *ctrl_request(struct client *c, Spillway__Ctrl__MsgCase k, void *body);

/* Deterministic page contents: page identity and a generation. */
void fill_page(uint8_t *p, uint64_t seed);
int check_page(const uint8_t *p, uint64_t seed);

/* Run a command, capture stdout into buf and stderr into run_stderr;
 * returns its exit status. */
extern char run_stderr[4096];
int run_capture(char *buf, size_t cap, const char *argv0, ...) __attribute__((sentinel));

#endif
