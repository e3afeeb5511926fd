/* SPDX-License-Identifier: MIT */
/*
 * One client connection, owned by one worker thread.
 *
 * Its bytes move through a stream (lib/stream.h: a socket or an RDMA
 * stream, which the connection never tells apart except through the
 * stream's STREAM_EVENTS flag). Input goes through the shared frame reader
 * (lib/frame_reader.h, 64 KiB stage); long payloads are received straight
 * into the frame buffer. No payload reaches an extent before its frame is
 * whole and its CRC checked (dataplane.c then commits it). A frame
 * is checked (codec rules, CRC) before anything acts on it, and any
 * violation closes this connection alone, with one log line naming the peer.
 *
 * Replies queue on an evbuffer, flushed after each batch of input. The
 * connection stops reading while its queued output is over
 * --conn-output-max, or while all connections' queued output is near
 * --output-max (admission.c; the worker's sweep resumes it once there is
 * room; a connection not registered with nothing queued is spared, below), and closes if a client keeps more requests outstanding than it was
 * told it may (HelloReply.max_inflight). A reply already owed is never
 * dropped for these caps: only new requests wait.
 *
 * Limits on what a peer can hold (docs/spillwayd.md, "Connection limits"):
 * - Before authentication a frame's payload may be at most
 *   CONN_HANDSHAKE_PAYLOAD_MAX bytes (a Hello or an Auth); a larger
 *   payload_len closes the connection at the header, before any allocation.
 * - After it, the payload buffer is sized to the frame being received, and
 *   one larger than the staging buffer is freed once the frame is done. The
 *   staging buffer itself is allocated on the first read and freed by the
 *   sweep once the connection has been quiet for a second, so idle
 *   connections hold neither.
 * - Payload buffers larger than the staging buffer come out of the
 *   server-wide --frame-buffer-max budget (admission.c). A connection whose
 *   next frame needs more than the budget has left keeps the header, stops
 *   reading (buf_wait) and is retried by the sweep; no frame is dropped, and
 *   connections that already hold a buffer finish theirs, so the budget is
 *   always given back. A frame must be finished within --write-stall-timeout
 *   of reading time (time spent waiting for the budget, or not read because
 *   the server paused this connection, does not count), else the connection
 *   is closed (kind="frame_stall").
 * - Timeouts, checked by conn_sweep: not authenticated within
 *   --handshake-timeout; replies queued but none taken for
 *   --write-stall-timeout (under server-wide output pressure: queue not
 *   empty for that long, see conn_sweep); nothing received for
 *   --idle-timeout, which by default spares connections with a registered
 *   identity (see conn_sweep).
 * - Under server-wide output pressure a connection that is not registered
 *   and has nothing queued still takes requests (see output_room in
 *   conn.c), so handshakes and operator sessions go on.
 */
#ifndef SPILLWAY_CONN_H
#define SPILLWAY_CONN_H

#include <stdint.h>
#include <sys/uio.h>

#include "ctrl.h"
#include "frame.h"
#include "frame_reader.h"
#include "admission.h"
#include "stats.h"

struct worker;
struct conn_origin;
struct stream;
struct rdma_domain;
struct server;
struct reg_client;

enum conn_state {
	CONN_HELLO,      /* waiting for Hello; nothing else is accepted          */
	CONN_AUTH,       /* Hello answered; waiting for Auth (a PSK is set)      */
	CONN_READY,      /* authenticated: Register or admin requests            */
	CONN_REGISTERED, /* an identity is bound: data and extent requests too   */
	CONN_CLOSING,    /* no more input; close once queued replies are sent    */
};

/* Largest control payload before authentication: a Hello (version, a
 * software string, a 32-byte nonce) or an Auth (a 32-byte MAC), with room. */
#define CONN_HANDSHAKE_PAYLOAD_MAX 1024u

struct conn {
	struct worker *w;
	uint64_t serial;          /* unique per connection, in accept order */
	struct server *srv;
	struct stream *s;         /* its bytes; closing it closes the connection */
	char peer[64];
	int node;                 /* NUMA node of the device it came in on, or -1 */
	/* RDMA connections: the protection domain its QP lives in (the
	 * stream's close releases it), and whether that is its identity's
	 * domain (then the QP takes remote READ and WRITE, KEY is answered and
	 * the client moves pages one-sided; see rdma_access.h). NULL, 0 else. */
	struct rdma_domain *rdma_dom;
	int onesided;
	int want_write;           /* STREAM_EVENTS: output waits for room to send */
	enum conn_state state;
	struct event *rev, *wev;
	struct evbuffer *out;
	int reading;

	/* Frame reader, and what its landing (conn_land in conn.c) chose. */
	struct frame_reader reader;
	uint8_t *payload;
	size_t payload_cap;
	size_t payload_charged;   /* of payload_cap, taken from --frame-buffer-max */
	atomic_uint_fast64_t *payload_share; /* ... and from this share (NULL: sessions') */
	int buf_wait;             /* header read; waits for the frame-buffer budget */
	uint64_t frame_used_ms;   /* reading time this frame's payload has taken */
	uint64_t frame_tick_ms;   /* when frame_used_ms was last brought up to date */
	/* A WRITE's page CRCs, computed while checking the frame and kept by
	 * the extent (see reg_extent.page_crc). */
	uint32_t rx_page_crc[SPILL_MAX_BATCH_PAGES];

	/* The pages of a large READ reply still to send, straight from the
	 * extent. While any remain, nothing else is dispatched, so a later
	 * request on this connection cannot change them first. */
	struct reg_extent *tx_ext;
	const uint8_t *tx_ptr;
	size_t tx_left;

	/* Outstanding requests: end offsets of queued replies in the output
	 * stream; a reply is done once sent_bytes passes its end. */
	uint64_t queued_bytes, sent_bytes;
	uint64_t *reply_end;
	unsigned ring_head, ring_count, ring_cap;

	uint8_t server_nonce[32], client_nonce[32];
	unsigned roles;            /* GATE_ROLE_* bits: set by control_gate.c only */
	int local_operator;        /* admin socket, peer passed SO_PEERCRED (listen_unix.c) */
	int auth_optional;         /* local_operator on a keyed server: Auth allowed, not needed */
	struct reg_client *client;
	struct conn *prev, *next;

	/* Limits (see the top of this file). Times are the worker's clock. */
	struct admission_ticket adm;
	uint64_t start_ms;        /* accepted */
	uint64_t last_in_ms;      /* bytes last received */
	uint64_t last_out_ms;     /* bytes last sent, or output last became non-empty */
	uint64_t busy_ms;         /* output last became non-empty (was empty until then) */
	int held;                 /* waits for room in the server-wide output cap */
	int authenticated;        /* has been READY: the handshake timeout is over */
};

/* Take over an accepted socket on worker w. */
void conn_start(struct worker *w, const struct conn_origin *o);
/* Close a connection no worker took (shutting down, out of memory). */
void conn_origin_close(struct conn_origin *o);
/* Stop reading; close once the queued replies are out. */
void conn_drain(struct conn *c);
/* Close now, dropping unsent replies. */
void conn_abort(struct conn *c);
/* The worker's periodic pass over its connections: timeouts, connections
 * held for output room, staging buffers of quiet connections. */
void conn_sweep(struct worker *w);

/* Queue a reply to req with payload pieces (data replies). */
void conn_reply(struct conn *c, const struct frame_hdr *req, uint16_t status, uint8_t flags,
		const struct iovec *iov, int iovcnt);
/* Reply ABSENT to a READ: iov is the presence map then the pages; page_raw
 * the raw CRCs of those pages (stored ones, or a zero page's). */
void conn_reply_absent(struct conn *c, const struct frame_hdr *req, const struct iovec *iov,
		       int iovcnt, const uint32_t *page_raw);
/* Reply to a READ with len bytes of an extent's pages, checksummed from the
 * CRCs stored when they were written, and without copying them when the
 * socket takes them (the extent stays pinned until they are out). */
void conn_reply_pages(struct conn *c, const struct frame_hdr *req, struct reg_extent *e,
		      const uint8_t *mem, size_t len);
/* Queue a control reply, or an unsolicited control message when req is NULL. */
void conn_reply_ctrl(struct conn *c, const struct frame_hdr *req, const Spillway__Ctrl *msg);
/* Send an unsolicited control message already packed (len bytes, at most a
 * control frame's payload) from outside the connection's own callbacks (a
 * notification): queued, then written at once, since no request of the peer
 * is coming to flush it. May free c on a write error: returns -1 then. */
int conn_send_ctrl(struct conn *c, const void *payload, size_t len);
/* Queue an Error control reply. */
void conn_reply_error(struct conn *c, const struct frame_hdr *req, uint16_t status,
		      const char *message);
/* Log one line naming the peer, count it, and close once replies are out. */
void conn_fail(struct conn *c, enum stats_err kind, const char *why);

/* Implemented in dataplane.c and control.c. */
void dataplane_handle(struct conn *c, const struct frame_hdr *h, uint8_t *payload);

void control_handle(struct conn *c, const struct frame_hdr *h, const uint8_t *payload);

#endif
