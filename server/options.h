/* SPDX-License-Identifier: MIT */
/*
 * spillwayd options: command-line flags, and the same keys in a config file
 * (--config FILE). Flags override the file. [client NAME] sections in the
 * file hold quotas; SIGHUP reloads them.
 */
#ifndef SPILLWAY_SERVER_OPTIONS_H
#define SPILLWAY_SERVER_OPTIONS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "registry.h"

#define OPT_MAX_LISTEN 8
#define OPT_MAX_PEERS 32
#define OPT_TEXT 512
#define OPT_ADMIN_SOCKET "/run/spillway/spillwayd.sock"

struct server_options {
	char listen[OPT_MAX_LISTEN][OPT_TEXT];
	int nlisten;
	uint64_t capacity;
	char numa_nodes[128];
	char psk_file[OPT_TEXT];
	char admin_psk_file[OPT_TEXT]; /* key whose holders may change quotas */
	int insecure;
	char metrics[OPT_TEXT];    /* HOST:PORT, or "none" */
	uint64_t extent_size;
	int mlock;
	int hugetlb;
	uint64_t grace_s;
	char log_level[16];
	int workers;               /* 0: one per CPU */
	unsigned max_inflight;
	int ready_fd;              /* -1: none */
	char config[OPT_TEXT];
	char nbd[OPT_TEXT];        /* NBD listener HOST:PORT; empty: none */
	int nbd_insecure;          /* allow a non-loopback NBD listener */
	/* NBD limits (docs/nbd.md): connections, seconds, bytes. */
	unsigned nbd_max_conns;
	unsigned nbd_handshake_timeout_s;
	unsigned nbd_idle_timeout_s;          /* before the first request; 0: off */
	unsigned nbd_attached_idle_timeout_s; /* after it; 0: off */
	unsigned nbd_stall_timeout_s;
	uint64_t nbd_buffer_memory;
	/* Cluster (docs/arbiter.md). */
	char advertise[OPT_TEXT];  /* URL clients reach this server at; empty: first tcp listener */
	char peers[OPT_MAX_PEERS][OPT_TEXT];
	int npeers;
	int arbiter;               /* this server arbitrates the cluster */
	char arbiter_url[OPT_TEXT]; /* report to the arbiter there */
	unsigned report_interval_ms;
	unsigned high_pct, low_pct;
	unsigned reclaim_deadline_ms;
	/* Policy (registry.h struct reg_policy): what a session that is not an
	 * operator may grant itself, and how many identities there may be. */
	struct reg_policy policy;
	/* Operator access over a local socket (listen_unix.c). */
	char admin_socket[108];    /* Unix socket path, or "none" */
	int admin_socket_given;    /* set explicitly: failing to listen is fatal */
	char admin_group[64];      /* its members are operators there; "" = root only */
	/* Connection limits (admission.c, conn.c; docs/spillwayd.md). */
	unsigned max_conns;            /* every listener together */
	unsigned max_conns_per_peer;   /* from one peer address */
	unsigned max_unauth;           /* not yet authenticated */
	unsigned max_unauth_per_peer;  /* ... from one peer address */
	unsigned handshake_timeout_s;  /* to authenticate */
	unsigned idle_timeout_s;       /* nothing received; 0: never */
	int idle_timeout_all;          /* idle timeout for registered connections too */
	unsigned write_stall_timeout_s; /* replies queued, none read */
	unsigned frame_stall_timeout_s; /* reading a frame's payload this long */
	unsigned accept_backoff_ms;    /* pause a listener out of descriptors */
	uint64_t conn_output_max;      /* one connection's queued replies */
	uint64_t output_max;           /* all connections' queued replies */
	uint64_t frame_buffer_max;     /* all payload buffers over 64 KiB */
	/* Of those, what one identity (or all sessions without one) may hold;
	 * 0: a quarter of frame_buffer_max, at least one largest frame. */
	uint64_t frame_buffer_per_client;
	unsigned metrics_max_conns;    /* open connections to --metrics */
};

/* 0 to run, 1 when --help or --version was printed, -EINVAL with err set. */
int options_parse(int argc, char **argv, struct server_options *o, char *err, size_t cap);

/* The [client NAME] sections of a config file. Caller frees with options_free_quotas. */
int options_load_quotas(const char *path, char ***names, struct reg_quota **quotas,
			size_t *n, char *err, size_t cap);
void options_free_quotas(char **names, struct reg_quota *quotas, size_t n);

/* The [export NAME] sections (size = SIZE, client = NAME): NBD exports made at
 * start-up. Caller frees *out. */
struct opt_export {
	char name[64];
	uint64_t size;
	char client[72];
};
int options_load_exports(const char *path, struct opt_export **out, size_t *n, char *err,
			 size_t cap);

void options_usage(FILE *out);

#endif
