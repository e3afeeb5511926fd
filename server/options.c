/* SPDX-License-Identifier: MIT */
#include "options.h"

#include <errno.h>
#include <stddef.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "ctrl.h"
#include "log.h"
#include "wire.h"

void options_usage(FILE *out)
{
	fprintf(out,
		"usage: spillwayd [options]\n"
		"  --listen URL               tcp://HOST:PORT or rdma://HOST:PORT[?node=N], where clients\n"
		"                             connect (repeatable; default tcp://127.0.0.1:7707)\n"
		"  --capacity SIZE            pool size across the chosen nodes (default 1G)\n"
		"  --numa-nodes all|LIST      nodes to pool, e.g. 0,1 or 0-3 (default all)\n"
		"  --psk-file FILE            pre-shared key clients must prove (mode 0600)\n"
		"  --admin-psk-file FILE      a second key; only its holders may change quotas\n"
		"  --insecure                 allow a non-loopback listener without a key\n"
		"  --metrics HOST:PORT|none   Prometheus endpoint (default 127.0.0.1:9707)\n"
		"  --extent-size SIZE         allocation unit, a power of two (default 2M)\n"
		"  --mlock                    lock the pool in RAM\n"
		"  --hugetlb                  back pools with reserved huge pages when available\n"
		"  --grace SECONDS            keep a disconnected client's pages this long (default 60)\n"
		"  --workers N                event-loop threads (default: one per CPU)\n"
		"  --max-inflight N           requests one connection may have outstanding (default 1024)\n"
		"  --log-level LEVEL          error, warn, info or debug (default info)\n"
		"  --config FILE              read the same keys (key = value) from FILE\n"
		"  --ready-fd FD              write \"tcp=PORT metrics=PORT\" to FD once serving\n"
		"  --nbd HOST:PORT            serve NBD exports there (off by default; loopback only)\n"
		"  --nbd-insecure             allow a non-loopback NBD listener (NBD has no auth, no TLS)\n"
		"  --nbd-max-connections N    NBD connections open at once; more are closed (default 256)\n"
		"  --nbd-handshake-timeout S  NBD negotiation must end within S seconds (default 10)\n"
		"  --nbd-idle-timeout S       close an NBD connection with no request yet after S s\n"
		"                             (default 120; 0: never)\n"
		"  --nbd-attached-idle-timeout S  ... one that has made requests, idle S s (default 0: never)\n"
		"  --nbd-stall-timeout S      longest pause inside one NBD request (default 30)\n"
		"  --nbd-buffer-memory SIZE   NBD transfer buffers, all connections (default 32M)\n"
		"cluster (docs/arbiter.md):\n"
		"  --advertise URL            where clients reach this server (default: first tcp listener)\n"
		"  --peer URL                 another server of the cluster (repeatable)\n"
		"  --arbiter                  arbitrate the cluster: take reports, choose who gives back\n"
		"  --arbiter-url URL          report usage to the arbiter there\n"
		"  --report-interval-ms N     report at least this often (default 1000)\n"
		"  --high-watermark PCT       arbiter: reclaim from here (default 90)\n"
		"  --low-watermark PCT        arbiter: ... down to here (default 80)\n"
		"  --reclaim-deadline-ms N    arbiter: a victim's time to comply (default 10000)\n"
		"policy (without an operator quota for the name, sessions not operators get):\n"
		"  --default-reservation SIZE at most this reservation (default 0)\n"
		"  --default-priority N       no priority below this (default 0; -1000..1000)\n"
		"  --default-limit SIZE       at most this limit (default 0: none)\n"
		"  --max-identities N         identities in all, grace included (default 16384; 0: no cap)\n"
		"  --max-identities-per-key N identities one key may hold (default 4096; 0: no cap)\n"
		"operator access (docs/spillwayd.md#roles):\n"
		"  --admin-socket PATH|none   local socket for operators (default " OPT_ADMIN_SOCKET ")\n"
		"  --admin-group NAME         its members are operators on the admin socket (default: root only)\n"
		"connection limits (docs/spillwayd.md):\n"
		"  --max-connections N        connections, every listener together (default 1024)\n"
		"  --max-connections-per-peer N  from one peer address (default 128)\n"
		"  --max-unauthenticated N    not yet authenticated (default 128)\n"
		"  --max-unauthenticated-per-peer N  ... from one peer address (default 64)\n"
		"  --handshake-timeout S      time to authenticate (default 10)\n"
		"  --idle-timeout S           close a connection with no identity that sends\n"
		"                             nothing this long; 0: never (default 300)\n"
		"  --idle-timeout-all         ... and registered connections too\n"
		"  --write-stall-timeout S    close one that leaves replies unread this long (default 60)\n"
		"  --frame-stall-timeout S    close one whose frame takes this long to arrive (default 10)\n"
		"  --accept-backoff-ms N      pause accepting when out of descriptors (default 250)\n"
		"  --conn-output-max SIZE     one connection's queued replies (default 16M)\n"
		"  --output-max SIZE          all connections' queued replies (default 128M)\n"
		"  --frame-buffer-max SIZE    all frame buffers over 64K (default 64M)\n"
		"  --frame-buffer-per-client SIZE  one identity's share of them\n"
		"                             (default a quarter, at least 3M)\n"
		"  --metrics-max-connections N  open connections to --metrics (default 16)\n"
		"  --help, --version\n");
}

static void defaults(struct server_options *o)
{
	memset(o, 0, sizeof(*o));
	o->capacity = 1ull << 30;
	strcpy(o->numa_nodes, "all");
	strcpy(o->metrics, "127.0.0.1:9707");
	o->extent_size = 2u << 20;
	o->grace_s = 60;
	strcpy(o->log_level, "info");
	o->max_inflight = 1024;
	o->ready_fd = -1;
	o->report_interval_ms = 1000;
	o->high_pct = 90;
	o->low_pct = 80;
	o->reclaim_deadline_ms = 10000;
	o->policy.max_identities = 16384;
	o->policy.max_identities_per_key = 4096;
	strcpy(o->admin_socket, OPT_ADMIN_SOCKET);
	o->nbd_max_conns = 256;
	o->nbd_handshake_timeout_s = 10;
	o->nbd_idle_timeout_s = 120;
	o->nbd_attached_idle_timeout_s = 0;
	o->nbd_stall_timeout_s = 30;
	o->nbd_buffer_memory = 32u << 20;
	o->max_conns = 1024;
	o->max_conns_per_peer = 128;
	o->max_unauth = 128;
	o->max_unauth_per_peer = 64;
	o->handshake_timeout_s = 10;
	o->idle_timeout_s = 300;
	o->write_stall_timeout_s = 60;
	o->frame_stall_timeout_s = 10;
	o->accept_backoff_ms = 250;
	o->conn_output_max = 16u << 20;
	o->output_max = 128u << 20;
	o->frame_buffer_max = 64u << 20;
	o->metrics_max_conns = 16;
}

static int set_text(char *dst, size_t cap, const char *v, const char **why)
{
	if (strlen(v) >= cap) {
		*why = "value too long";
		return -EINVAL;
	}
	strcpy(dst, v);
	return 0;
}

static int set_bool(int *dst, const char *v, const char **why)
{
	if (!v || !strcmp(v, "true") || !strcmp(v, "yes") || !strcmp(v, "1"))
		*dst = 1;
	else if (!strcmp(v, "false") || !strcmp(v, "no") || !strcmp(v, "0"))
		*dst = 0;
	else {
		*why = "expected true or false";
		return -EINVAL;
	}
	return 0;
}

/* Cluster keys; 1 when key is not one of them. */
static int set_cluster_key(struct server_options *o, const char *key, const char *v,
			   const char **why)
{
	long n;
	if (!strcmp(key, "advertise"))
		return set_text(o->advertise, sizeof(o->advertise), v, why);
	if (!strcmp(key, "arbiter-url"))
		return set_text(o->arbiter_url, sizeof(o->arbiter_url), v, why);
	if (!strcmp(key, "arbiter"))
		return set_bool(&o->arbiter, v, why);
	if (!strcmp(key, "peer")) {
		if (o->npeers == OPT_MAX_PEERS) {
			*why = "too many peers (at most 32)";
			return -EINVAL;
		}
		return set_text(o->peers[o->npeers++], OPT_TEXT, v, why);
	}
	static const struct { const char *key; long lo, hi; } nums[] = {
		{ "report-interval-ms", 10, 60000 },
		{ "high-watermark", 1, 100 },
		{ "low-watermark", 0, 100 },
		{ "reclaim-deadline-ms", 1, 3600000 },
	};
	for (size_t i = 0; i < sizeof(nums) / sizeof(nums[0]); i++) {
		if (strcmp(key, nums[i].key))
			continue;
		if (config_parse_int(v, nums[i].lo, nums[i].hi, &n)) {
			*why = "whole number out of range (see --help)";
			return -EINVAL;
		}
		unsigned *dst[] = { &o->report_interval_ms, &o->high_pct, &o->low_pct,
				    &o->reclaim_deadline_ms };
		*dst[i] = (unsigned)n;
		return 0;
	}
	return 1;
}

/* Policy keys; 1 when key is not one of them. */
static int set_policy_key(struct server_options *o, const char *key, const char *v,
			  const char **why)
{
	struct reg_policy *p = &o->policy;
	long n;
	if (!strcmp(key, "default-reservation") || !strcmp(key, "default-limit")) {
		uint64_t sz;
		if (config_parse_size(v, &sz)) {
			*why = "expected a size such as 512M or 4G";
			return -EINVAL;
		}
		*(!strcmp(key, "default-limit") ? &p->default_limit : &p->default_reservation) = sz;
		return 0;
	}
	if (!strcmp(key, "default-priority")) {
		if (config_parse_int(v, CTRL_PRIORITY_MIN, CTRL_PRIORITY_MAX, &n)) {
			*why = "priority must be -1000..1000";
			return -EINVAL;
		}
		p->default_priority = (int)n;
		return 0;
	}
	if (!strcmp(key, "max-identities") || !strcmp(key, "max-identities-per-key")) {
		if (config_parse_int(v, 0, 10000000, &n)) {
			*why = "expected a whole number (0: no cap)";
			return -EINVAL;
		}
		*(!strcmp(key, "max-identities") ? &p->max_identities
						 : &p->max_identities_per_key) = (unsigned)n;
		return 0;
	}
	return 1;
}

/* A whole-number key bounded to [lo, hi], stored in an unsigned field. */
struct uint_key {
	const char *key;
	long lo, hi;
	size_t offset; /* of the unsigned in struct server_options */
};

/* Keys of table: 0 set, -EINVAL out of range, 1 when key is not there. */
static int set_uint_key(struct server_options *o, const struct uint_key *table, size_t n,
			const char *key, const char *v, const char **why)
{
	for (size_t i = 0; i < n; i++) {
		long x;
		if (strcmp(key, table[i].key))
			continue;
		if (config_parse_int(v, table[i].lo, table[i].hi, &x)) {
			*why = "whole number out of range (see --help)";
			return -EINVAL;
		}
		*(unsigned *)((char *)o + table[i].offset) = (unsigned)x;
		return 0;
	}
	return 1;
}

/* field must be an unsigned: the comparison below fails to build otherwise. */
#define UINT_KEY(k, lo, hi, field)                                                          \
	{ k, lo, hi,                                                                        \
	  offsetof(struct server_options, field) +                                          \
		  0 * sizeof(&((struct server_options *)0)->field == (unsigned *)0) }

/* A size key with a floor, stored in a uint64_t field. */
struct size_key {
	const char *key;
	uint64_t min;
	const char *why; /* the error, naming the floor */
	size_t offset;   /* of the uint64_t in struct server_options */
};

/* Keys of table: 0 set, -EINVAL unparsable or below the floor, 1 when key
 * is not there. */
static int set_size_key(struct server_options *o, const struct size_key *table, size_t n,
			const char *key, const char *v, const char **why)
{
	for (size_t i = 0; i < n; i++) {
		uint64_t sz;
		if (strcmp(key, table[i].key))
			continue;
		if (config_parse_size(v, &sz) || sz < table[i].min) {
			*why = table[i].why;
			return -EINVAL;
		}
		*(uint64_t *)((char *)o + table[i].offset) = sz;
		return 0;
	}
	return 1;
}

/* field must be a uint64_t: the comparison below fails to build otherwise. */
#define SIZE_KEY(k, min, why, field)                                                        \
	{ k, min, why,                                                                      \
	  offsetof(struct server_options, field) +                                          \
		  0 * sizeof(&((struct server_options *)0)->field == (uint64_t *)0) }

/* NBD limit keys; 1 when key is not one of them. */
static int set_nbd_key(struct server_options *o, const char *key, const char *v,
		       const char **why)
{
	static const struct size_key sizes[] = {
		SIZE_KEY("nbd-buffer-memory", 256u << 10, "expected a size of at least 256K",
			 nbd_buffer_memory),
	};
	int rc = set_size_key(o, sizes, sizeof(sizes) / sizeof(sizes[0]), key, v, why);
	if (rc <= 0)
		return rc;
	static const struct uint_key nums[] = {
		UINT_KEY("nbd-max-connections", 1, 65536, nbd_max_conns),
		UINT_KEY("nbd-handshake-timeout", 1, 3600, nbd_handshake_timeout_s),
		UINT_KEY("nbd-idle-timeout", 0, 2000000, nbd_idle_timeout_s),
		UINT_KEY("nbd-attached-idle-timeout", 0, 2000000, nbd_attached_idle_timeout_s),
		UINT_KEY("nbd-stall-timeout", 1, 3600, nbd_stall_timeout_s),
	};
	return set_uint_key(o, nums, sizeof(nums) / sizeof(nums[0]), key, v, why);
}

/* Operator-access keys; 1 when key is not one of them. */
static int set_admin_key(struct server_options *o, const char *key, const char *v,
			 const char **why)
{
	if (!strcmp(key, "admin-socket")) {
		o->admin_socket_given = 1;
		if (v[0] != '/' && strcmp(v, "none")) {
			*why = "expected an absolute path or none";
			return -EINVAL;
		}
		return set_text(o->admin_socket, sizeof(o->admin_socket), v, why);
	}
	if (!strcmp(key, "admin-group"))
		return set_text(o->admin_group, sizeof(o->admin_group), v, why);
	return 1;
}

/* Connection-limit keys; 1 when key is not one of them. */
static int set_limit_key(struct server_options *o, const char *key, const char *v,
			 const char **why)
{
	if (!strcmp(key, "idle-timeout-all"))
		return set_bool(&o->idle_timeout_all, v, why);
	static const struct size_key sizes[] = {
		SIZE_KEY("conn-output-max", 1u << 20, "expected a size of at least 1M",
			 conn_output_max),
		SIZE_KEY("output-max", 1u << 20, "expected a size of at least 1M", output_max),
		SIZE_KEY("frame-buffer-max", 4u << 20, "expected a size of at least 4M",
			 frame_buffer_max),
		SIZE_KEY("frame-buffer-per-client", 3u << 20, "expected a size of at least 3M",
			 frame_buffer_per_client),
	};
	int rc = set_size_key(o, sizes, sizeof(sizes) / sizeof(sizes[0]), key, v, why);
	if (rc <= 0)
		return rc;
	static const struct uint_key nums[] = {
		UINT_KEY("max-connections", 1, 1000000, max_conns),
		UINT_KEY("max-connections-per-peer", 1, 1000000, max_conns_per_peer),
		UINT_KEY("max-unauthenticated", 1, 1000000, max_unauth),
		UINT_KEY("max-unauthenticated-per-peer", 1, 1000000, max_unauth_per_peer),
		UINT_KEY("handshake-timeout", 1, 3600, handshake_timeout_s),
		UINT_KEY("idle-timeout", 0, 604800, idle_timeout_s),
		UINT_KEY("write-stall-timeout", 1, 86400, write_stall_timeout_s),
		UINT_KEY("frame-stall-timeout", 1, 86400, frame_stall_timeout_s),
		UINT_KEY("accept-backoff-ms", 1, 60000, accept_backoff_ms),
		UINT_KEY("metrics-max-connections", 1, 4096, metrics_max_conns),
	};
	return set_uint_key(o, nums, sizeof(nums) / sizeof(nums[0]), key, v, why);
}

/* One key, from a flag (value NULL for a bare boolean flag) or the file. */
static int set_key(struct server_options *o, const char *key, const char *v, const char **why)
{
	long n;
	if (!strcmp(key, "listen")) {
		if (o->nlisten == OPT_MAX_LISTEN) {
			*why = "too many listeners";
			return -EINVAL;
		}
		return set_text(o->listen[o->nlisten++], OPT_TEXT, v, why);
	}
	if (!strcmp(key, "capacity") || !strcmp(key, "extent-size")) {
		uint64_t sz;
		if (config_parse_size(v, &sz)) {
			*why = "expected a size such as 512M or 4G";
			return -EINVAL;
		}
		if (!strcmp(key, "capacity"))
			o->capacity = sz;
		else
			o->extent_size = sz;
		return 0;
	}
	if (!strcmp(key, "numa-nodes"))
		return set_text(o->numa_nodes, sizeof(o->numa_nodes), v, why);
	if (!strcmp(key, "psk-file"))
		return set_text(o->psk_file, sizeof(o->psk_file), v, why);
	if (!strcmp(key, "admin-psk-file"))
		return set_text(o->admin_psk_file, sizeof(o->admin_psk_file), v, why);
	if (!strcmp(key, "metrics"))
		return set_text(o->metrics, sizeof(o->metrics), v, why);
	if (!strcmp(key, "log-level")) {
		if (log_set_level_name(v)) {
			*why = "expected error, warn, info or debug";
			return -EINVAL;
		}
		return set_text(o->log_level, sizeof(o->log_level), v, why);
	}
	if (!strcmp(key, "insecure"))
		return set_bool(&o->insecure, v, why);
	if (!strcmp(key, "nbd"))
		return set_text(o->nbd, sizeof(o->nbd), v, why);
	if (!strcmp(key, "nbd-insecure"))
		return set_bool(&o->nbd_insecure, v, why);
	if (!strcmp(key, "mlock"))
		return set_bool(&o->mlock, v, why);
	if (!strcmp(key, "hugetlb"))
		return set_bool(&o->hugetlb, v, why);
	if (!strcmp(key, "grace") || !strcmp(key, "workers") || !strcmp(key, "max-inflight") ||
	    !strcmp(key, "ready-fd")) {
		if (config_parse_int(v, 0, 1000000, &n)) {
			*why = "expected a whole number";
			return -EINVAL;
		}
		if (!strcmp(key, "grace"))
			o->grace_s = (uint64_t)n;
		else if (!strcmp(key, "workers"))
			o->workers = (int)n;
		else if (!strcmp(key, "ready-fd"))
			o->ready_fd = (int)n;
		else if (n < 1 || n > 4096) {
			*why = "max-inflight must be 1..4096";
			return -EINVAL;
		} else
			o->max_inflight = (unsigned)n;
		return 0;
	}
	int rc = set_cluster_key(o, key, v, why);
	if (rc <= 0)
		return rc;
	rc = set_policy_key(o, key, v, why);
	if (rc <= 0)
		return rc;
	if ((rc = set_admin_key(o, key, v, why)) <= 0)
		return rc;
	if ((rc = set_nbd_key(o, key, v, why)) <= 0)
		return rc;
	if ((rc = set_limit_key(o, key, v, why)) <= 0)
		return rc;
	*why = "unknown key";
	return -EINVAL;
}

static int file_entry(void *arg, const char *section, const char *key, const char *value,
		      const char **why)
{
	if (section[0])
		return 0; /* quota sections: options_load_quotas */
	return set_key(arg, key, value, why);
}

static int check(struct server_options *o, char *err, size_t cap)
{
	uint64_t e = o->extent_size;
	if (e < SPILL_PAGE_SIZE || (e & (e - 1)) || e > (1ull << 30)) {
		snprintf(err, cap, "--extent-size must be a power of two from 4K to 1G");
		return -EINVAL;
	}
	if (o->capacity < e) {
		snprintf(err, cap, "--capacity must hold at least one extent");
		return -EINVAL;
	}
	if (o->admin_psk_file[0] && !o->psk_file[0]) {
		snprintf(err, cap, "--admin-psk-file needs --psk-file (the clients' key)");
		return -EINVAL;
	}
	if (o->nlisten == 0)
		strcpy(o->listen[o->nlisten++], "tcp://127.0.0.1:7707");
	if (o->arbiter && o->arbiter_url[0]) {
		snprintf(err, cap, "--arbiter and --arbiter-url: a server either arbitrates or reports");
		return -EINVAL;
	}
	if (o->low_pct > o->high_pct) {
		snprintf(err, cap, "--low-watermark must not be above --high-watermark");
		return -EINVAL;
	}
	return 0;
}

int options_parse(int argc, char **argv, struct server_options *o, char *err, size_t cap)
{
	static const struct option longopts[] = {
		{ "listen", required_argument, NULL, 0 },
		{ "capacity", required_argument, NULL, 0 },
		{ "numa-nodes", required_argument, NULL, 0 },
		{ "psk-file", required_argument, NULL, 0 },
		{ "admin-psk-file", required_argument, NULL, 0 },
		{ "insecure", no_argument, NULL, 0 },
		{ "metrics", required_argument, NULL, 0 },
		{ "extent-size", required_argument, NULL, 0 },
		{ "mlock", no_argument, NULL, 0 },
		{ "hugetlb", no_argument, NULL, 0 },
		{ "grace", required_argument, NULL, 0 },
		{ "workers", required_argument, NULL, 0 },
		{ "max-inflight", required_argument, NULL, 0 },
		{ "log-level", required_argument, NULL, 0 },
		{ "config", required_argument, NULL, 0 },
		{ "ready-fd", required_argument, NULL, 0 },
		{ "nbd", required_argument, NULL, 0 },
		{ "nbd-insecure", no_argument, NULL, 0 },
		{ "nbd-max-connections", required_argument, NULL, 0 },
		{ "nbd-handshake-timeout", required_argument, NULL, 0 },
		{ "nbd-idle-timeout", required_argument, NULL, 0 },
		{ "nbd-attached-idle-timeout", required_argument, NULL, 0 },
		{ "nbd-stall-timeout", required_argument, NULL, 0 },
		{ "nbd-buffer-memory", required_argument, NULL, 0 },
		{ "advertise", required_argument, NULL, 0 },
		{ "peer", required_argument, NULL, 0 },
		{ "arbiter", no_argument, NULL, 0 },
		{ "arbiter-url", required_argument, NULL, 0 },
		{ "report-interval-ms", required_argument, NULL, 0 },
		{ "high-watermark", required_argument, NULL, 0 },
		{ "low-watermark", required_argument, NULL, 0 },
		{ "reclaim-deadline-ms", required_argument, NULL, 0 },
		{ "default-reservation", required_argument, NULL, 0 },
		{ "default-priority", required_argument, NULL, 0 },
		{ "default-limit", required_argument, NULL, 0 },
		{ "max-identities", required_argument, NULL, 0 },
		{ "max-identities-per-key", required_argument, NULL, 0 },
		{ "admin-socket", required_argument, NULL, 0 },
		{ "admin-group", required_argument, NULL, 0 },
		{ "max-connections", required_argument, NULL, 0 },
		{ "max-connections-per-peer", required_argument, NULL, 0 },
		{ "max-unauthenticated", required_argument, NULL, 0 },
		{ "max-unauthenticated-per-peer", required_argument, NULL, 0 },
		{ "handshake-timeout", required_argument, NULL, 0 },
		{ "idle-timeout", required_argument, NULL, 0 },
		{ "idle-timeout-all", no_argument, NULL, 0 },
		{ "write-stall-timeout", required_argument, NULL, 0 },
		{ "frame-stall-timeout", required_argument, NULL, 0 },
		{ "accept-backoff-ms", required_argument, NULL, 0 },
		{ "conn-output-max", required_argument, NULL, 0 },
		{ "output-max", required_argument, NULL, 0 },
		{ "frame-buffer-max", required_argument, NULL, 0 },
		{ "frame-buffer-per-client", required_argument, NULL, 0 },
		{ "metrics-max-connections", required_argument, NULL, 0 },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	defaults(o);
	/* The file first, so that flags override it. */
	for (int i = 1; i < argc; i++) {
		const char *path = NULL;
		if (!strcmp(argv[i], "--config") && i + 1 < argc)
			path = argv[i + 1];
		else if (!strncmp(argv[i], "--config=", 9))
			path = argv[i] + 9;
		if (!path)
			continue;
		if (o->config[0]) {
			snprintf(err, cap, "give --config once");
			return -EINVAL;
		}
		if (strlen(path) >= sizeof(o->config)) {
			snprintf(err, cap, "--config path too long");
			return -EINVAL;
		}
		strcpy(o->config, path);
		int rc = config_parse_file(path, file_entry, o, err, cap);
		if (rc)
			return -EINVAL;
	}
	int nlisten_file = o->nlisten;
	int idx, c;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "", longopts, &idx)) != -1) {
		if (c == 'h') {
			options_usage(stdout);
			return 1;
		}
		if (c == 'V') {
			printf("spillwayd %s\n", SPILL_VERSION);
			return 1;
		}
		if (c != 0) {
			snprintf(err, cap, "unknown or incomplete option '%s' (see --help)",
				 argv[optind - 1]);
			return -EINVAL;
		}
		const char *name = longopts[idx].name;
		if (!strcmp(name, "config")) {
			/* getopt takes abbreviations the pre-scan did not read. */
			if (strcmp(optarg, o->config)) {
				snprintf(err, cap, "spell out --config FILE");
				return -EINVAL;
			}
			continue;
		}
		if (!strcmp(name, "listen") && nlisten_file) {
			o->nlisten = 0; /* flags replace the file's listeners */
			nlisten_file = 0;
		}
		const char *why = NULL;
		if (set_key(o, name, optarg, &why)) {
			snprintf(err, cap, "--%s: %s", name, why);
			return -EINVAL;
		}
	}
	if (optind < argc) {
		snprintf(err, cap, "unexpected argument '%s'", argv[optind]);
		return -EINVAL;
	}
	if (o->config[0]) {
		/* Check the quota sections now, so a mistake is a usage error. */
		char **names;
		struct reg_quota *q;
		size_t n;
		if (options_load_quotas(o->config, &names, &q, &n, err, cap))
			return -EINVAL;
		options_free_quotas(names, q, n);
		struct opt_export *ex;
		if (options_load_exports(o->config, &ex, &n, err, cap))
			return -EINVAL;
		free(ex);
	}
	return check(o, err, cap);
}

struct quota_load {
	char **names;
	struct reg_quota *q;
	size_t n, cap;
};

static int quota_entry(void *arg, const char *section, const char *key, const char *value,
		       const char **why)
{
	struct quota_load *l = arg;
	if (!section[0])
		return 0;
	if (!strncmp(section, "export ", 7))
		return 0; /* options_load_exports */
	if (strncmp(section, "client ", 7) || !ctrl_name_valid(section + 7)) {
		*why = "sections are [client NAME] or [export NAME]";
		return -EINVAL;
	}
	const char *name = section + 7;
	size_t i = 0;
	while (i < l->n && strcmp(l->names[i], name))
		i++;
	if (i == l->n) {
		if (l->n == l->cap) {
			size_t cap = l->cap ? l->cap * 2 : 8;
			char **nn = realloc(l->names, cap * sizeof(*nn));
			if (!nn)
				return -ENOMEM;
			l->names = nn;
			struct reg_quota *nq = realloc(l->q, cap * sizeof(*nq));
			if (!nq)
				return -ENOMEM;
			l->q = nq;
			l->cap = cap;
		}
		l->names[i] = strdup(name);
		if (!l->names[i])
			return -ENOMEM;
		memset(&l->q[i], 0, sizeof(l->q[i]));
		l->n++;
	}
	struct reg_quota *q = &l->q[i];
	long p;
	if (!strcmp(key, "priority")) {
		if (config_parse_int(value, -1000, 1000, &p)) {
			*why = "priority must be -1000..1000";
			return -EINVAL;
		}
		q->has_priority = 1;
		q->priority = (int)p;
	} else if (!strcmp(key, "reservation")) {
		if (config_parse_size(value, &q->reservation)) {
			*why = "expected a size";
			return -EINVAL;
		}
		q->has_reservation = 1;
	} else if (!strcmp(key, "limit")) {
		if (config_parse_size(value, &q->limit)) {
			*why = "expected a size";
			return -EINVAL;
		}
		q->has_limit = 1;
	} else {
		*why = "client keys are priority, reservation, limit";
		return -EINVAL;
	}
	return 0;
}

int options_load_quotas(const char *path, char ***names, struct reg_quota **quotas,
			size_t *n, char *err, size_t cap)
{
	struct quota_load l = { 0 };
	int rc = config_parse_file(path, quota_entry, &l, err, cap);
	if (rc) {
		options_free_quotas(l.names, l.q, l.n);
		return rc;
	}
	*names = l.names;
	*quotas = l.q;
	*n = l.n;
	return 0;
}

void options_free_quotas(char **names, struct reg_quota *quotas, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	free(quotas);
}

/* [export NAME] sections: NBD exports created at start-up (size, client). */
struct export_load {
	struct opt_export *v;
	size_t n;
};

static int export_entry(void *arg, const char *section, const char *key, const char *value,
			const char **why)
{
	struct export_load *l = arg;
	if (strncmp(section, "export ", 7))
		return 0;
	const char *name = section + 7;
	if (!ctrl_export_name_valid(name)) {
		*why = "export names are 1-60 of [A-Za-z0-9._:-]";
		return -EINVAL;
	}
	size_t i = 0;
	while (i < l->n && strcmp(l->v[i].name, name))
		i++;
	if (i == l->n) {
		struct opt_export *nv = realloc(l->v, (l->n + 1) * sizeof(*nv));
		if (!nv)
			return -ENOMEM;
		l->v = nv;
		memset(&l->v[i], 0, sizeof(l->v[i]));
		strcpy(l->v[i].name, name);
		l->n++;
	}
	struct opt_export *e = &l->v[i];
	if (!strcmp(key, "size")) {
		if (config_parse_size(value, &e->size) || !e->size || e->size % 4096 ||
		    e->size > CTRL_EXPORT_MAX_BYTES) {
			*why = "export size must be a multiple of 4K, at most 1T";
			return -EINVAL;
		}
	} else if (!strcmp(key, "client")) {
		if (!ctrl_name_valid(value)) {
			*why = "client names are 1-64 of [A-Za-z0-9._:-]";
			return -EINVAL;
		}
		strcpy(e->client, value);
	} else {
		*why = "export keys are size, client";
		return -EINVAL;
	}
	return 0;
}

int options_load_exports(const char *path, struct opt_export **out, size_t *n, char *err,
			 size_t cap)
{
	struct export_load l = { 0 };
	int rc = config_parse_file(path, export_entry, &l, err, cap);
	for (size_t i = 0; !rc && i < l.n; i++)
		if (!l.v[i].size) {
			snprintf(err, cap, "%s: [export %s] needs a size", path, l.v[i].name);
			rc = -EINVAL;
		}
	if (rc) {
		free(l.v);
		return rc;
	}
	*out = l.v;
	*n = l.n;
	return 0;
}
