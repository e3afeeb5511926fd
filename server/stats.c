/* SPDX-License-Identifier: MIT */
#include "stats.h"

#include <errno.h>
#include <stdio.h>

struct stats server_stats;

static const char *const op_names[STATS_OP_COUNT] = {
	"ping", "read", "write", "invalidate", "ctrl",
};

static const char *const err_names[STATS_ERR_COUNT] = {
	"protocol", "crc", "auth", "not_owned", "no_extent", "range",
	"pool_full", "over_limit", "absent", "inflight", "unregistered",
	"stale",
};


static uint64_t read_counter(void *arg)
{
	return atomic_load((atomic_uint_fast64_t *)arg);
}

int stats_register(struct metrics *m)
{
	char labels[64];
	int rc = 0;
	for (int i = 0; i < STATS_OP_COUNT; i++) {
		snprintf(labels, sizeof(labels), "op=\"%s\"", op_names[i]);
		rc |= metrics_add_counter(m, "spillway_ops_total", labels,
					  "Requests served, by operation", &server_stats.ops[i]);
	}
	for (int i = STATS_OP_READ; i <= STATS_OP_WRITE; i++) {
		snprintf(labels, sizeof(labels), "op=\"%s\"", op_names[i]);
		rc |= metrics_add_counter(m, "spillway_bytes_total", labels,
					  "Page bytes moved, by operation", &server_stats.bytes[i]);
	}
	for (int i = 0; i < STATS_ERR_COUNT; i++) {
		snprintf(labels, sizeof(labels), "kind=\"%s\"", err_names[i]);
		rc |= metrics_add_counter(m, "spillway_errors_total", labels,
					  "Refused requests and closed connections, by cause",
					  &server_stats.errors[i]);
	}
	for (int i = 0; i < STATS_OP_COUNT; i++) {
		snprintf(labels, sizeof(labels), "op=\"%s\"", op_names[i]);
		rc |= metrics_add_hist(m, "spillway_op_latency_seconds", labels,
				       "Server time from a request's last byte to its reply being queued",
				       &server_stats.latency[i]);
	}
	rc |= metrics_add_counter(m, "spillway_connections_total", "",
				  "Connections accepted since start", &server_stats.connections_total);
	rc |= metrics_add_gauge(m, "spillway_connections", "", "Connections open now",
				read_counter, &server_stats.connections_open);
	rc |= metrics_add_gauge(m, "spillway_cluster_report_clients_left_out", "",
				"Clients the last report to the arbiter left out (past 8192)",
				read_counter, &server_stats.report_clients_left_out);
	return rc ? -ENOMEM : 0;
}
