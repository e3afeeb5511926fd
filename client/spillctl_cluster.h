/* SPDX-License-Identifier: MIT */
/*
 * spillctl's cluster commands (docs/arbiter.md, docs/spillctl.md):
 *
 *   cluster status                  the arbiter's AdminClusterStatus
 *   clients [--local]               per-client totals from the arbiter
 *   client set NAME ...             on every server of the cluster
 *   events [--follow] [--after SEQ] the arbiter's AdminEvents
 *   server drain|undrain URL        AdminDrain to URL, then wait for it
 *
 * --server is any member: spillctl asks it for ClusterInfo and goes to the
 * arbiter it names. spillctl_cluster.c talks, spillctl_cluster_print.c
 * prints. Each *_cmd gets argv from its last command word and returns the
 * exit status.
 */
#ifndef SPILLWAY_SPILLCTL_CLUSTER_H
#define SPILLWAY_SPILLCTL_CLUSTER_H

#include <stdint.h>
#include <stdio.h>

#include "spillctl.h"

int cluster_status_cmd(const struct ctl *ctl, int argc, char **argv);
int cluster_clients_cmd(const struct ctl *ctl, int argc, char **argv);
int cluster_client_set_cmd(const struct ctl *ctl, int argc, char **argv);
int cluster_events_cmd(const struct ctl *ctl, int argc, char **argv);
int cluster_drain_cmd(const struct ctl *ctl, int argc, char **argv);

/* Where a drain stands; bytes of the draining server. */
struct drain_progress {
	const char *server;
	uint64_t used;        /* still on it */
	uint64_t total;       /* on it when the drain began (or the most seen since) */
	uint64_t elapsed_ms;
	int done;             /* used reached 0 */
	int timed_out;
};

/* The arbiter's view; arbiter_url names it. */
void cluster_print_status(FILE *out, const Spillway__AdminClusterStatusReply *r,
			  const char *arbiter_url, int json);
/* A cluster without an arbiter: what one server knows. */
void cluster_print_info(FILE *out, const Spillway__ClusterInfoReply *r, int json);
void cluster_print_clients(FILE *out, Spillway__ClusterClient *const *c, size_t n, int json);
void cluster_print_server(FILE *out, const Spillway__ServerInfo *s, int json);
void cluster_print_events_header(FILE *out);
void cluster_print_event(FILE *out, const Spillway__Event *e, int json);
/* What client set did on one server: client, or NULL and err. */
struct set_result {
	const char *server;
	const Spillway__ClientStats *client;
	char err[256];
};
void cluster_print_set(FILE *out, const char *name, const struct set_result *r, size_t n,
		       int json);
/* A progress line: JSON lines, or a bar redrawn with \r on a terminal. A
 * final one (done or timed_out) ends the bar with a newline. */
void cluster_print_drain(FILE *out, const struct drain_progress *p, int bar);

#endif
