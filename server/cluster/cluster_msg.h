/* SPDX-License-Identifier: MIT */
/*
 * What servers, the arbiter and the control gate say about the cluster, as
 * plain C structs: a server's description, a server's report to the
 * arbiter, the arbiter's reply, cluster status and events. arbiter.c and
 * cluster.c work on these alone; server/wire/wire_cluster.[ch] is the one
 * place that turns them into protobuf messages and back.
 *
 * Strings are fixed arrays, always NUL-terminated; a longer string from the
 * wire is cut. Arrays are owned by whoever filled the struct and freed with
 * that module's _free function (or, for stack copies, live with them).
 */
#ifndef SPILLWAY_CLUSTER_MSG_H
#define SPILLWAY_CLUSTER_MSG_H

#include <stddef.h>
#include <stdint.h>

#define CLUSTER_URL_MAX     513 /* a server's URL (512 as ctrl_validate allows), NUL included */
#define CLUSTER_ID_MAX      257 /* a server id (256 as ctrl_validate allows), NUL included */
#define CLUSTER_NAME_MAX    64  /* a client name (CTRL_NAME_MAX), NUL excluded */
#define CLUSTER_SERVERS_MAX 256 /* servers in one cluster (CTRL_CLUSTER_MAX) */

/* One NUMA node's pool. */
struct node_usage {
	uint32_t node;
	uint64_t capacity, used;
};

/* A server as it describes itself, or as the arbiter or a peer last heard
 * of it. nodes points at nnodes entries owned by whoever filled it. */
struct server_info {
	char url[CLUSTER_URL_MAX];
	char id[CLUSTER_ID_MAX];
	uint64_t capacity, used;
	uint64_t report_age_ms; /* since its last report (the arbiter's view) */
	int draining, up, arbiter;
	const struct node_usage *nodes;
	size_t nnodes;
};

/* One client identity's quota and use on one server. */
struct client_usage {
	char name[CLUSTER_NAME_MAX + 1];
	int priority;
	uint64_t reservation, limit, used;
	unsigned connections; /* live connections here (0: in its grace period) */
};

/* Server -> arbiter: the server and the clients it reports (see
 * peer_report.h for which). */
struct peer_report {
	struct server_info server;
	const struct client_usage *clients;
	size_t nclients;
};

enum peer_action_kind {
	PEER_ACTION_RECLAIM, /* send the client Reclaim(bytes, deadline) */
	PEER_ACTION_REVOKE,  /* take bytes of the client's extents back now */
};

/* What the arbiter wants one server to do. */
struct peer_action {
	enum peer_action_kind kind;
	char client[CLUSTER_NAME_MAX + 1];
	uint64_t bytes, deadline_ms, decision_id;
};

/* A client's bytes on the cluster's other servers. */
struct client_budget {
	char name[CLUSTER_NAME_MAX + 1];
	uint64_t used_elsewhere;
};

/* Arbiter -> server, answering a report. */
struct arbiter_reply {
	struct server_info *servers; /* the whole cluster, the reporter included */
	size_t nservers;
	int cluster_full;            /* at or above the high watermark */
	struct client_budget *budgets;
	size_t nbudgets;
	struct peer_action *actions;
	size_t nactions;
	struct node_usage *node_store; /* what servers[].nodes point into */
};

/* A client summed over the servers that are up (arbiter status). */
struct cluster_client {
	char name[CLUSTER_NAME_MAX + 1];
	int priority;
	uint64_t reservation, limit, used;
	uint64_t pending;  /* asked back, deadline not passed */
	long long badness; /* arbiter_policy.h; 0 = never chosen now */
	uint32_t servers;  /* how many servers hold its memory */
};

struct cluster_status {
	struct server_info *servers;
	size_t nservers;
	uint64_t capacity, used; /* of the servers that are up */
	unsigned high_pct, low_pct;
	uint64_t decisions;
	struct cluster_client *clients; /* one page, by name */
	size_t nclients;
	char next_after[CLUSTER_NAME_MAX + 1]; /* "": the last page */
	struct node_usage *node_store;
};

/* One arbitration event: what was decided and the figures behind it. */
struct cluster_event {
	uint64_t seq, time_ms, bytes, used, capacity, decision_id;
	long long badness;
	char kind[16]; /* reclaim, complied, revoke, server-up, server-down, drain, undrain */
	char client[CLUSTER_NAME_MAX + 1];
	char server[CLUSTER_URL_MAX];
	char reason[256];
};

struct cluster_events {
	struct cluster_event *events;
	size_t nevents;
	uint64_t last_seq;
};

/* Any server: the cluster as it knows it (ClusterInfo). */
struct cluster_members {
	struct server_info *servers; /* this server first; no nodes */
	size_t nservers;
	char arbiter_url[CLUSTER_URL_MAX]; /* "" without an arbiter */
	int cluster_full;
};

/* A client's answer to a Reclaim. */
struct reclaim_answer {
	uint64_t reclaim_id, freed_bytes;
};

#endif
