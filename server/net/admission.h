/* SPDX-License-Identifier: MIT */
/*
 * Admission: who may hold a connection to spillwayd, shared by every listener
 * (tcp://, rdma://, NBD). A connection is admitted only while the caps hold:
 * connections in total, connections from one peer address (the address, not
 * the port; an IPv4-mapped IPv6 address counts as its IPv4 address, another
 * IPv6 address by its /64 prefix),
 * connections that have not yet authenticated, and those of them from one
 * address (so one address cannot fill the unauthenticated places). Admin
 * socket connections are keyed by the peer's uid and meet the per-peer caps
 * only: the socket's mode already limits who may connect, and an operator
 * must get in when a flood has taken every network place. A refused connection is closed
 * at once by its listener and counted by reason; nothing is kept for it.
 *
 * Invariants: every admitted ticket is released exactly once
 * (admission_leave); admission_authenticated is idempotent. The per-peer
 * table has one entry per address with a live connection, so it never holds
 * more than max_conns entries: its storage is sized once, at admission_init.
 *
 * It also owns what the limits are measured by: accept back-off when the
 * process runs out of descriptors (one log line per interval at most), the
 * server-wide count of queued output bytes, the server-wide budget of frame
 * buffers larger than the staging buffer (--frame-buffer-max: what is taken
 * never exceeds it), and counters of timeouts.
 * Thread-safe: listeners run on the main thread and the NBD accept thread,
 * connections close on workers.
 */
#ifndef SPILLWAY_ADMISSION_H
#define SPILLWAY_ADMISSION_H

#include <stdatomic.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

struct metrics;
struct server_options;

/* What a connection holds while admitted (zeroed: holds nothing). */
struct admission_ticket {
	uint8_t addr[16];  /* peer key: IPv4 in the first 4 bytes, IPv6's /64 in 8 */
	uint8_t family;    /* AF_INET, AF_INET6, or AF_UNIX (addr: the uid) */
	uint8_t admitted;  /* holds a place; 0 in a zeroed ticket */
	uint8_t unauth;    /* still counted as not authenticated */
};

enum admission_refusal {
	ADM_REFUSED_TOTAL,     /* --max-connections reached */
	ADM_REFUSED_PER_PEER,  /* --max-connections-per-peer reached */
	ADM_REFUSED_UNAUTH,    /* --max-unauthenticated reached */
	ADM_REFUSED_UNAUTH_PER_PEER, /* --max-unauthenticated-per-peer reached */
	ADM_REFUSED_COUNT
};

enum admission_timeout {
	ADM_TIMEOUT_HANDSHAKE,   /* not authenticated within --handshake-timeout */
	ADM_TIMEOUT_IDLE,        /* nothing received for --idle-timeout */
	ADM_TIMEOUT_WRITE_STALL, /* replies not read for --write-stall-timeout */
	ADM_TIMEOUT_FRAME_STALL, /* a frame not finished within --write-stall-timeout */
	ADM_TIMEOUT_COUNT
};

/* Size the per-peer table and take the caps from o. 0 or -ENOMEM. */
int admission_init(const struct server_options *o);
void admission_destroy(void);

/* Admit a connection from sa, or refuse it (-EMFILE for the total,
 * -EUSERS per peer, -EAGAIN for unauthenticated; *why says which in words,
 * and the refusal is counted and logged at most once per interval). */
int admission_enter(const struct sockaddr *sa, struct admission_ticket *t, const char **why);
/* The same for a connection on the admin socket from uid (per-peer caps
 * only, keyed by uid). */
int admission_enter_local(uid_t uid, struct admission_ticket *t, const char **why);
/* The connection proved the key (or none was needed): it no longer counts
 * as unauthenticated. */
void admission_authenticated(struct admission_ticket *t);
/* The connection closed. Safe on a ticket that holds nothing. */
void admission_leave(struct admission_ticket *t);

/* accept() failed with err. Returns the back-off in milliseconds when the
 * listener should pause (out of descriptors or memory), else 0. Counts it,
 * and logs one line per log interval at most, naming the listener. */
unsigned admission_accept_failed(const char *listener, int err);

/* A connection closed by a timeout. */
void admission_count_timeout(enum admission_timeout kind);

/* A connection began waiting for room under --output-max. */
void admission_count_output_wait(void);
/* Queued output, across every connection: bytes added (+) or sent (-). */
void admission_output_add(int64_t delta);
/* May a connection queue another reply now? Leaves room for one reply of
 * the largest size per worker, so the total stays within --output-max. */
int admission_output_room(void);

/* Take bytes of the --frame-buffer-max budget for one payload buffer, drawn
 * on share: the counter of the identity the connection is registered as,
 * or NULL for connections without one (they share one counter). 1 if
 * granted; 0 if that would exceed the budget, or, once half the budget is
 * in use, the share's part of it (--frame-buffer-per-client), and then
 * *by_share says which (nothing is taken). One identity cannot hold what
 * the others' WRITEs need. */
int admission_frame_buffer_take(atomic_uint_fast64_t *share, uint64_t bytes, int *by_share);
/* Return bytes taken by admission_frame_buffer_take (the same share). */
void admission_frame_buffer_give(atomic_uint_fast64_t *share, uint64_t bytes);
/* A connection began waiting for the frame-buffer budget (by_share: for
 * its identity's part of it). */
void admission_count_frame_buffer_wait(int by_share);

/* One log line per peer-triggered event kind per interval: 1 if this caller
 * may log now; *suppressed gets how many were not logged since. */
int admission_log_ok(atomic_uint_fast64_t *last_ms, atomic_uint_fast64_t *skipped,
		     uint64_t *suppressed);

/* Gauges and counters of all the above. 0 or -ENOMEM. */
int admission_register_metrics(struct metrics *m);

#endif
