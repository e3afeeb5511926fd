/* SPDX-License-Identifier: MIT */
/*
 * The cluster's messages on the wire: every conversion between the plain
 * structs of server/cluster/cluster_msg.h and their protobuf messages
 * (PeerReport, PeerReportReply, AdminClusterStatusReply, AdminEventsReply,
 * ClusterInfoReply, AdminDrainReply, Reclaim, ReclaimReply, Drain). The
 * arbiter and cluster code never see a protobuf type; the control gate's
 * handlers and the peer reporter call these at the edge.
 *
 * Built messages (struct wire_msg) point into the plain structs they came
 * from, without copying strings: keep those alive until the message is
 * packed. Decoded plain structs own their arrays.
 */
#ifndef SPILLWAY_WIRE_CLUSTER_H
#define SPILLWAY_WIRE_CLUSTER_H

#include <stddef.h>
#include <stdint.h>

#include "cluster_msg.h"
#include "spillway.pb-c.h"

struct server;
struct wire_mem;

/* A control message built from plain structs, and the memory it points
 * into. Always safe to free after a build, failed or not. */
struct wire_msg {
	Spillway__Ctrl ctrl;
	struct wire_mem *mem;
};
void wire_cluster_msg_free(struct wire_msg *m);

/* Plain -> protobuf. 0, or -ENOMEM (m is then still to be freed). */
int wire_cluster_peer_report(const struct peer_report *r, struct wire_msg *m);
int wire_cluster_arbiter_reply(const struct arbiter_reply *r, struct wire_msg *m);
int wire_cluster_status(const struct cluster_status *st, struct wire_msg *m);
int wire_cluster_events(const struct cluster_events *ev, struct wire_msg *m);
int wire_cluster_members(const struct cluster_members *cm, struct wire_msg *m);
int wire_cluster_drain_reply(const struct server_info *si, struct wire_msg *m);

/* Node usage as StatsReply and AdminStatusReply carry it: store and ptrs
 * hold n entries. Returns n. */
size_t wire_cluster_node_stats(const struct node_usage *u, size_t n, Spillway__NodeStats *store,
			       Spillway__NodeStats **ptrs);

/* Protobuf -> plain, from messages ctrl_unpack validated. The report owns
 * its clients and nodes (free with wire_cluster_peer_report_free); the
 * reply's arrays are malloc'ed as arbiter.c's are (free with
 * arbiter_reply_free). 0 or -ENOMEM (nothing left to free). */
int wire_cluster_peer_report_from(const Spillway__PeerReport *m, struct peer_report *r);
void wire_cluster_peer_report_free(struct peer_report *r);
int wire_cluster_arbiter_reply_from(const Spillway__PeerReportReply *m, struct arbiter_reply *r);
struct reclaim_answer wire_cluster_reclaim_answer(const Spillway__ReclaimReply *m);

#endif
