/* SPDX-License-Identifier: MIT */
/*
 * The core client library: one authenticated connection to one spillwayd,
 * with many requests in flight. spillctl, the tests, the benchmark and the
 * pager library all talk to servers through it.
 *
 * A struct client is used by one thread at a time (callers serialise). Data
 * requests are asynchronous: client_submit() queues and sends, client_reap()
 * collects completions in the order replies arrive. Page buffers belong to the
 * caller and must stay valid until the request completes; READ payloads land
 * directly in them. Every wait is bounded by opts.timeout_ms; on a timeout,
 * a protocol violation or a broken stream the connection is marked dead and
 * every later call returns -ENOTCONN (or the original error).
 *
 * Functions return 0 (or a count) on success and -errno on failure; a server
 * refusal maps from its wire status through frame_status_to_errno().
 */
#ifndef SPILLWAY_CLIENT_H
#define SPILLWAY_CLIENT_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "auth.h"
#include "ctrl.h"
#include "wire.h"

struct client_opts {
	/* NULL: connect without authenticating. Set: the server must prove it
	 * holds this key (HMAC challenge/response both ways); a server that
	 * says it needs no authentication is refused with -EACCES. */
	const struct auth_psk *psk;
	const char *name;           /* NULL: do not register (admin sessions) */
	int priority;               /* -1000..1000 */
	uint64_t reservation;
	uint64_t limit;             /* 0: no limit */
	/* To resume an identity (or add a connection to it): the token from an
	 * earlier registration, CTRL_TOKEN_BYTES long. NULL for a new identity. */
	const uint8_t *token;
	int timeout_ms;             /* 0: 10 s */
	unsigned window;            /* max requests in flight; 0: server's max */
	/* Write versions (wire header wver) for WRITE and INVALIDATE come from
	 * this clock, raised past the identity's newest at Register. Share one
	 * among all connections that write the same pages, so the server can
	 * order writes that came on different connections. NULL: the
	 * connection's own clock. */
	_Atomic uint64_t *write_clock;
};

struct client_req {
	/* Filled by the caller. */
	uint16_t op;        /* SPILL_OP_READ, _WRITE, _INVALIDATE, _PING,
			     * _ALLOC (page = node; extent set on reply) or _FREE */
	uint64_t extent;
	uint32_t page;
	uint16_t npages;
	void *buf;          /* WRITE source / READ destination: npages pages */
	uint8_t *present;   /* READ: optional SPILL_PRESENT_MAP_BYTES map out */
	void *user;
	/* Set on completion. 0, or -errno: -ENODATA when a READ found absent
	 * pages (present tells which; absent pages are zeroed in buf). */
	int status;
	/* Private to the library. */
	uint64_t req_id;
	int done;
	int sync;
};

struct client_extent {
	uint64_t id;
	uint32_t npages;
	uint32_t node;
};

struct client;

/* Connect, Hello, authenticate if psk, register if name. 0 or -errno;
 * *err_text (if non-NULL) gets the server's explanation when it refused. */
int client_connect(const char *url, const struct client_opts *opts,
		   struct client **out, char *err_text, size_t err_cap);
void client_close(struct client *c);

/* After a successful registration. */
uint64_t client_id(const struct client *c);
const uint8_t *client_token(const struct client *c);
int client_resumed(const struct client *c);
/* Extents the server says this identity owned when it resumed. */
const struct client_extent *client_resumed_extents(const struct client *c, size_t *n);
uint64_t client_extent_bytes(const struct client *c);
unsigned client_window(const struct client *c);
int client_fd(const struct client *c);
/* 0 while usable; else the -errno that broke the connection. */
int client_dead(const struct client *c);

/*
 * Queue one data request; waits for window space if needed. Small requests
 * are batched: they leave at the latest when the caller waits (client_reap,
 * a synchronous call) or calls client_flush. 0 or -errno (the request is not
 * queued on error).
 */
int client_submit(struct client *c, struct client_req *req);
/* Send every queued request now. */
int client_flush(struct client *c);
/* Collect up to max completed requests, waiting until at least min are done
 * (min 0: only what has already arrived). Returns the count or -errno. */
int client_reap(struct client *c, struct client_req **done, int max, int min);
int client_inflight(const struct client *c);

/* Synchronous helpers (submit + wait for that request). */
int client_read(struct client *c, uint64_t extent, uint32_t page, uint16_t npages,
		void *buf, uint8_t *present);
int client_write(struct client *c, uint64_t extent, uint32_t page, uint16_t npages,
		 const void *buf);
int client_invalidate(struct client *c, uint64_t extent, uint32_t page, uint16_t npages);
int client_ping(struct client *c);

/* Control requests. */
int client_alloc_extents(struct client *c, unsigned count, int node,
			 struct client_extent *out);
int client_free_extents(struct client *c, const uint64_t *ids, unsigned count);

/*
 * Generic control round trip: send req, wait for its reply. On success *reply
 * holds the reply (free with ctrl_free). A server Error reply returns its
 * mapped -errno with the message copied to err_text.
 */
int client_ctrl(struct client *c, const Spillway__Ctrl *req, Spillway__Ctrl **reply,
		char *err_text, size_t err_cap);

/*
 * Control messages the server sends unasked (Reclaim) are handed to this
 * callback when the call that read them returns. It owns msg. Until then
 * they wait in a queue of at most 64 messages and 1 MiB (packed): a server
 * that sends more during one call breaks the connection, which fails with
 * -ENOBUFS. Without a callback, the 16 newest are kept between calls.
 */
typedef void (*client_notify_fn)(struct client *c, Spillway__Ctrl *msg, void *arg);
void client_set_notify(struct client *c, client_notify_fn fn, void *arg);
/* Send a control message that expects no reply (ReclaimReply). */
int client_send_ctrl(struct client *c, const Spillway__Ctrl *msg);

/*
 * RDMA connections: the remote key of an extent (fetched from the server on
 * first use), and a way to install one obtained elsewhere. The second exists
 * for tests and tools that check isolation: a key of another identity's
 * extent must fail with -EACCES at the remote end, never reach its pages.
 * -ENOTSUP on a connection without one-sided operations.
 */
int client_rdma_key_get(struct client *c, uint64_t extent, uint64_t *addr, uint32_t *rkey);
int client_rdma_key_set(struct client *c, uint64_t extent, uint64_t addr, uint32_t rkey,
			uint32_t npages);

/*
 * Hand the connected, registered socket over (to the kernel module, as
 * spillctl swap attach does) and free everything else. Returns the socket
 * fd (close-on-exec, blocking), or -EBUSY if requests are in flight or
 * bytes are buffered that the new owner would never see. c is freed
 * either way.
 */
int client_release_fd(struct client *c);

#endif
