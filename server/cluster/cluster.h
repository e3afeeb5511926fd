/* SPDX-License-Identifier: MIT */
/*
 * This server's place in the cluster (docs/arbiter.md): the URL clients
 * reach it at, the other servers it knows of (--peer, and whatever the
 * arbiter's replies list), whether the cluster is full, and its own drain.
 * The arbiter's replies are applied here: membership, admission state, and
 * the Reclaim and revocation actions meant for this server.
 */
#ifndef SPILLWAY_CLUSTER_H
#define SPILLWAY_CLUSTER_H

#include <stddef.h>
#include <stdint.h>

#include "cluster_msg.h"

struct server;
struct conn;

/* After the listeners are up (the advertised URL needs the bound port). */
int cluster_init(struct server *s);
void cluster_destroy(struct server *s);
const char *cluster_advertised(const struct server *s);

/* This server as a server_info; its nodes go into store (npools entries).
 * Strings are copies. */
void cluster_self_info(struct server *s, struct server_info *si, struct node_usage *store);

/* Per-node capacity and use of this server's pools, as Stats, AdminStatus
 * and server_info carry them: store holds npools entries; returns how many. */
size_t cluster_node_usage(struct server *s, struct node_usage *store);

/* The cluster as this server knows it: itself first, then every other one
 * it knows of. Free with cluster_info_free (also after an error). 0 or
 * -ENOMEM. */
int cluster_info(struct server *s, struct cluster_members *r);
void cluster_info_free(struct cluster_members *r);

/* Every client identity of this server, with its quota, use and live
 * connections, by name (malloc'ed; NULL with *n = 0 without memory). The
 * one place the cluster code asks the registry for all of them. */
struct client_usage *cluster_client_usage(struct server *s, size_t *n);

/* Drain: refuse new extents and tell every connected client to move its
 * pages elsewhere (Drain message); undrain reverses it. Returns how many
 * clients were told. */
int cluster_set_draining(struct server *s, int on);
int cluster_draining(struct server *s);
/* A client registered: tell it if this server is draining. */
void cluster_client_registered(struct server *s, const char *name);

/* The arbiter answered a report (or, with lost, stopped answering:
 * admission falls back to this server's own pool). */
void cluster_apply(struct server *s, const struct arbiter_reply *r);
void cluster_arbiter_lost(struct server *s);

#endif
