/* SPDX-License-Identifier: MIT */
/*
 * libspillway: far memory for a program, paged to spillwayd servers.
 *
 * spill_alloc() returns an ordinary, page-aligned, zero-filled region. The
 * program reads and writes it like any memory; the library keeps at most the
 * local budget of it resident and moves 4 KiB pages (2 MiB groups when access
 * is sequential) to and from the servers behind the program's back, using
 * userfaultfd. A page whose every copy is lost raises SIGBUS when touched; it
 * never reads back as zeros or stale bytes.
 *
 * Regions are not inherited by fork(): in a child they are unmapped, so a
 * touch is SIGSEGV, never a silent zero page. See docs/libspillway.md.
 *
 * Every function is thread-safe. Failures return NULL or -1 with errno set;
 * spill_strerror(errno) explains library-specific codes too.
 */
#ifndef SPILLWAY_H
#define SPILLWAY_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SPILL_MAX_SERVERS 16

/* How faults are served. */
enum spill_fault_mode {
	SPILL_FAULT_DEFAULT = 0, /* the measured faster one: SPILL_FAULT_INTHREAD */
	SPILL_FAULT_INTHREAD,    /* in the faulting thread (UFFD_FEATURE_SIGBUS) */
	SPILL_FAULT_HANDLER,     /* by library handler threads reading the uffd  */
};

struct spill_config {
	/* Server URLs (tcp://host:port); NULL-terminated or counted by
	 * nservers. Empty: SPILLWAY_SERVERS. */
	const char *servers[SPILL_MAX_SERVERS];
	int nservers;
	const char *psk_file;    /* NULL: SPILLWAY_PSK_FILE, else no auth      */
	size_t local_budget;     /* bytes kept resident; 0: SPILLWAY_LOCAL_BUDGET,
				  * else 64 MiB                                 */
	const char *name;        /* client identity; NULL: SPILLWAY_NAME, else
				  * "spill-<host>-<pid>"                        */
	int priority;            /* -1000..1000                                */
	uint64_t reservation;    /* bytes guaranteed on each server            */
	uint64_t limit;          /* bytes at most on each server; 0: none      */
	int replicas;            /* copies of every page; 0: SPILLWAY_REPLICAS,
				  * else 1                                      */
	enum spill_fault_mode fault_mode; /* DEFAULT: SPILLWAY_FAULT_MODE
					   * ("inthread" or "handler")  */
	int no_prefetch;         /* 1: never fetch ahead (for measurements)   */
	int timeout_ms;          /* per server request; 0: 5000               */
};

/* Advice for spill_advise(). */
enum spill_advice {
	SPILL_NORMAL = 0,
	SPILL_SEQUENTIAL,  /* fault in whole 2 MiB groups                     */
	SPILL_RANDOM,      /* never fetch ahead                               */
	SPILL_WILLNEED,    /* fetch the range now (up to the budget)          */
	SPILL_COLD,        /* evict the range first when memory is needed    */
};

struct spill_stats {
	uint64_t faults;           /* missing-page faults served              */
	uint64_t wp_faults;        /* first writes to clean resident pages    */
	uint64_t remote_reads;     /* pages read from servers                 */
	uint64_t remote_read_bytes;
	uint64_t remote_writes;    /* pages written to servers (each replica) */
	uint64_t remote_write_bytes;
	uint64_t evictions;        /* pages made non-resident                 */
	uint64_t clean_drops;      /* of those, dropped with no network write */
	uint64_t zero_fills;       /* faults on never-written pages           */
	uint64_t prefetched;       /* pages fetched ahead of a fault          */
	uint64_t prefetch_hits;    /* of those, consumed without a fault      */
	uint64_t group_fetches;    /* 2 MiB groups moved as one op            */
	uint64_t failovers;        /* reads served by a replica after a failure */
	uint64_t rereplicated;     /* pages copied to a new replica (a server
				    * lost or draining)                      */
	uint64_t lost_pages;       /* pages with no readable copy (SIGBUS)    */
	uint64_t reclaims;         /* reclaim requests served                 */
	uint64_t reclaimed_bytes;  /* server bytes given back for them        */
	uint64_t resident_bytes;
	uint64_t remote_bytes;     /* bytes with a copy on a server (once)    */
	uint64_t region_bytes;     /* bytes allocated by spill_alloc          */
	uint64_t local_budget;
	uint64_t metadata_bytes;   /* local bookkeeping                       */
	int servers_up;
	int fault_mode;            /* enum spill_fault_mode actually in use   */
	/* Copy currency (docs/libspillway.md): a replica that misses a write
	 * stops counting for those pages until repair copies them to it. */
	uint64_t copies_missed;    /* page copies a WRITE did not reach         */
	uint64_t repaired;         /* page copies rebuilt from a current copy   */
	uint64_t degraded_groups;  /* 2 MiB groups waiting for repair (now)     */
};

/* Library-specific error codes (errno values above the system's). */
enum spill_error {
	SPILL_ENOSERVERS = 2000,   /* no server configured or none reachable  */
	SPILL_EBADCONFIG,          /* an invalid config or environment value  */
	SPILL_EUFFD,               /* userfaultfd unavailable (see strerror)  */
};

typedef struct spill_ctx spill_ctx;

/* Called when a server asks for memory back, after the library freed what it
 * could: wanted and freed are bytes. The program may free regions here. */
typedef void (*spill_reclaim_fn)(spill_ctx *ctx, uint64_t wanted, uint64_t freed, void *arg);

spill_ctx *spill_open(const struct spill_config *cfg);
void *spill_alloc(spill_ctx *ctx, size_t bytes);
int spill_free(spill_ctx *ctx, void *region);
int spill_advise(spill_ctx *ctx, void *addr, size_t len, int advice);
int spill_set_budget(spill_ctx *ctx, size_t local_bytes);
int spill_stats(spill_ctx *ctx, struct spill_stats *out);
int spill_on_reclaim(spill_ctx *ctx, spill_reclaim_fn fn, void *arg);
void spill_close(spill_ctx *ctx);
const char *spill_strerror(int err);

#ifdef __cplusplus
}
#endif

#endif
