/* SPDX-License-Identifier: MIT */
/*
 * The cluster arbiter (spillwayd --arbiter): keeps every server's latest
 * report, sums each client's memory over the cluster, and when the cluster
 * passes its high watermark asks the worst clients (arbiter_policy.h) to
 * give memory back by a deadline; a client that does not is revoked. Every
 * decision becomes an event. All state is rebuilt from reports, so a
 * restarted arbiter picks up where the servers are. Thread-safe.
 */
#ifndef SPILLWAY_ARBITER_H
#define SPILLWAY_ARBITER_H

#include <stdint.h>

#include "cluster_msg.h"

struct arbiter_config {
	unsigned high_pct, low_pct;
	unsigned deadline_ms;   /* a victim's time to comply */
	unsigned interval_ms;   /* servers report at least this often */
};

struct arbiter;

struct arbiter *arbiter_create(const struct arbiter_config *cfg);
void arbiter_destroy(struct arbiter *a);

/* A server's report: fills reply (free with arbiter_reply_free, also after
 * an error). A client the report leaves out holds nothing on that server.
 * 0 or -ENOMEM. */
int arbiter_report(struct arbiter *a, const struct peer_report *report,
		   struct arbiter_reply *reply);
void arbiter_reply_free(struct arbiter_reply *reply);

/* spillctl cluster status / events. Free with the matching _free (also
 * after an error). Status lists clients in pages by name: those after
 * after_name, at most max (0 or more than ARBITER_STATUS_PAGE_MAX: that). */
#define ARBITER_STATUS_PAGE_MAX 1000
int arbiter_status(struct arbiter *a, const char *after_name, uint32_t max,
		   struct cluster_status *st);
void arbiter_status_free(struct cluster_status *st);
/* Events after after_seq, at most max (0: all kept). */
int arbiter_events(struct arbiter *a, uint64_t after_seq, uint32_t max,
		   struct cluster_events *ev);
void arbiter_events_free(struct cluster_events *ev);

#endif
