/* SPDX-License-Identifier: MIT */
/*
 * Reporting to the arbiter: a thread sends this server's usage (PeerReport)
 * every --report-interval-ms and soon after an allocation or free, to the
 * arbiter at --arbiter-url or, on the arbiter itself, straight in; each
 * reply is applied by cluster.c. While the arbiter cannot be reached the
 * thread retries every interval and admission falls back to this server's
 * own pool.
 *
 * A report carries the clients that hold memory here or are connected, at
 * most PEER_REPORT_CLIENTS_MAX of them (the largest holders), so that it
 * always fits one control frame however many identities the registry
 * keeps; identities in their grace period holding nothing are left out
 * (docs/arbiter.md, "Reports stay within one frame").
 */
#ifndef SPILLWAY_PEER_REPORT_H
#define SPILLWAY_PEER_REPORT_H

#define PEER_REPORT_CLIENTS_MAX 8192

struct server;

/* Nothing to do (0) without --arbiter or --arbiter-url. */
int peer_report_start(struct server *s);
void peer_report_stop(struct server *s);

#endif
