/* SPDX-License-Identifier: MIT */
/*
 * One client connection: the frame reader, reply queueing and the limits of
 * conn.h. Two rules here keep one peer from taking what others need:
 *
 * Server-wide output (--output-max). When all connections' queued output
 * is near the cap, a connection stops taking requests (it is "held") until
 * the sweep sees room, except one that is not registered and has nothing
 * queued: it may take one request, whose reply is a control reply (the
 * data plane needs an identity), so Hello, Auth, Register and operator
 * requests are answered and the handshake timeout cannot be turned against
 * newcomers. Its next request waits until that reply has left. The cap may
 * so be overshot by at most one control reply (16 + SPILL_MAX_CTRL_PAYLOAD
 * bytes, in practice under 4 KiB except for operator listings) per
 * connection that is not registered, on top of the per-worker headroom
 * admission.c keeps. And while the pressure lasts, the write-stall clock of
 * a connection with queued output runs from the moment its queue was last
 * empty (busy_ms), not from the last byte it took: a held connection adds
 * nothing, so a reader that keeps up empties its queue, and one that reads
 * a trickle to keep its share is closed after --write-stall-timeout
 * (kind="write_stall"), which frees the share for the others. Without
 * pressure the clock runs from the last byte taken, so a slow reader is
 * left alone while the server has room.
 *
 * Frame buffers (--frame-buffer-max): see conn.h. Sizes up to STAGE_BYTES
 * are not charged (their count is bounded by the connection caps).
 *
 * The connection never asks what its stream is. It watches the stream's fd
 * the way the stream's flags say (stream.h): a socket is read while the
 * connection reads and watched for room to send while output waits; a
 * stream with STREAM_EVENTS (RDMA) is always watched, and each wake-up
 * processes its events and then retries both directions (on_events).
 */
#include "conn.h"

#include <endian.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "log.h"
#include "registry.h"
#include "server.h"
#include "slab.h"
#include "stream.h"
#include "worker.h"

#define STAGE_BYTES   FRAME_READER_STAGE_BYTES
#define DIRECT_SEND   (64 * 1024)        /* write a large reply without copying */
#define SEND_IOV      128                /* queued output pieces per send */
#define STAGE_KEEP_MS 1000               /* quiet this long: the stage is freed */
#define READ_ROUNDS   16                 /* fairness: yield to other connections */
#define CLOSING_KEEP  (64 * 1024)        /* output still sent after a fatal error */

static void on_read(evutil_socket_t fd, short what, void *arg);
static int output_room(struct conn *c);
static void on_events(evutil_socket_t fd, short what, void *arg);
static const struct frame_reader_ops conn_rx_ops;
static int read_input(struct conn *c);
static int can_dispatch(struct conn *c);
static void on_write(evutil_socket_t fd, short what, void *arg);

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* The zero-copy reply is done (or never will be): its extent's pin goes.
 * If the client freed the extent meanwhile, this last reference uncharges
 * it (registry_extent_put takes the registry mutex). */
static void release_tx(struct conn *c)
{
	if (c->tx_ext)
		registry_extent_put(c->tx_ext);
	c->tx_ext = NULL;
	c->tx_left = 0;
}

/* Free the payload buffer, giving back what it took of the budget. */
static void drop_payload(struct conn *c)
{
	free(c->payload);
	c->payload = NULL;
	c->payload_cap = 0;
	if (c->payload_charged)
		admission_frame_buffer_give(c->payload_share, c->payload_charged);
	c->payload_charged = 0;
	c->payload_share = NULL;
}

static void conn_free(struct conn *c)
{
	release_tx(c);
	drop_payload(c); /* while its identity's share still exists */
	if (c->client) {
		registry_release_ctrl(c->srv->reg, c->client, c->serial);
		registry_disconnect(c->srv->reg, c->client);
	}
	if (c->rev)
		event_free(c->rev);
	if (c->wev)
		event_free(c->wev);
	if (c->out) {
		evbuffer_drain(c->out, evbuffer_get_length(c->out)); /* the server-wide count */
		evbuffer_free(c->out);
	}
	/* The place first: a peer that sees the close may count the gauges. */
	admission_leave(&c->adm);
	stream_close(c->s); /* an RDMA stream releases rdma_dom after its QP */
	c->s = NULL;
	c->rdma_dom = NULL;
	atomic_fetch_sub(&server_stats.connections_open, 1);
	worker_conn_closed(c->w, c);
	frame_reader_free(&c->reader);
	free(c->reply_end);
	slab_free(c->srv->conn_cache, c);
}

void conn_origin_close(struct conn_origin *o)
{
	admission_leave(&o->adm);
	stream_close(o->stream);
	o->stream = NULL;
	o->dom = NULL;
}

/* Every change to a connection's queued output, into the server-wide count. */
static void on_out_changed(struct evbuffer *b, const struct evbuffer_cb_info *info, void *arg)
{
	(void)b;
	(void)arg;
	admission_output_add((int64_t)info->n_added - (int64_t)info->n_deleted);
}

void conn_start(struct worker *w, const struct conn_origin *o)
{
	const char *peer = o->peer;
	struct conn *c = slab_zalloc(w->srv->conn_cache);
	if (!c) {
		struct conn_origin copy = *o;
		conn_origin_close(&copy);
		return;
	}
	c->w = w;
	c->srv = w->srv;
	c->s = o->stream;
	c->rdma_dom = o->dom;
	frame_reader_init(&c->reader, &conn_rx_ops, c);
	c->node = o->node;
	c->local_operator = o->local_operator;
	snprintf(c->peer, sizeof(c->peer), "%s", peer);
	c->state = CONN_HELLO;
	c->adm = o->adm;
	c->start_ms = c->last_in_ms = c->last_out_ms = c->busy_ms = w->now_ms;
	c->ring_cap = c->srv->opt.max_inflight;
	c->reply_end = calloc(c->ring_cap, sizeof(*c->reply_end));
	c->out = evbuffer_new();
	if (c->out && !evbuffer_add_cb(c->out, on_out_changed, NULL)) {
		evbuffer_free(c->out);
		c->out = NULL;
	}
	/* A STREAM_EVENTS descriptor says both "input" and "room to send";
	 * on_events looks at both, so wev is never armed for it. */
	int events = c->s->flags & STREAM_EVENTS, fd = stream_fd(c->s);
	c->rev = event_new(w->base, fd, EV_READ | EV_PERSIST, events ? on_events : on_read, c);
	c->wev = event_new(w->base, events ? -1 : fd, EV_WRITE, on_write, c);
	atomic_fetch_add(&server_stats.connections_open, 1);
	metrics_inc(&server_stats.connections_total, 1);
	static atomic_uint_fast64_t next_serial = 1;
	c->serial = atomic_fetch_add(&next_serial, 1);
	/* Link first, so conn_free's unlink is always balanced. */
	c->next = w->conns;
	if (w->conns)
		w->conns->prev = c;
	w->conns = c;
	w->nconns++;
	if (!c->reply_end || !c->out || !c->rev || !c->wev) {
		log_error("%s: out of memory setting up connection", peer);
		conn_free(c);
		return;
	}
	c->reading = 1;
	event_add(c->rev, NULL);
	log_debug("%s: connected", c->peer);
}

static void set_reading(struct conn *c, int on)
{
	if (on == c->reading)
		return;
	c->reading = on;
	if (c->s->flags & STREAM_EVENTS) {
		/* The stream's fd stays watched (send completions); input it
		 * already holds raises no new event, so ask for a pass. */
		if (on && stream_has_input(c->s))
			event_active(c->rev, EV_READ, 0);
		return;
	}
	if (on)
		event_add(c->rev, NULL);
	else
		event_del(c->rev);
}

static void arm_write(struct conn *c)
{
	if (c->s->flags & STREAM_EVENTS)
		c->want_write = 1;
	else
		event_add(c->wev, NULL);
}

/* Retire replies that have left in full. */
static void account_sent(struct conn *c, size_t n)
{
	if (n)
		c->last_out_ms = c->w->now_ms;
	c->sent_bytes += n;
	while (c->ring_count && c->reply_end[c->ring_head] <= c->sent_bytes) {
		c->ring_head = (c->ring_head + 1) % c->ring_cap;
		c->ring_count--;
	}
}

/* Send from the front of the queued output, draining what left. */
static ssize_t send_queued(struct conn *c)
{
	struct evbuffer_iovec v[SEND_IOV];
	struct iovec iov[SEND_IOV];
	int n = evbuffer_peek(c->out, -1, NULL, v, SEND_IOV);
	if (n > SEND_IOV)
		n = SEND_IOV;
	for (int i = 0; i < n; i++)
		iov[i] = (struct iovec){ v[i].iov_base, v[i].iov_len };
	ssize_t sent = stream_sendv(c->s, iov, n);
	if (sent > 0)
		evbuffer_drain(c->out, (size_t)sent);
	return sent;
}

/* Write what the stream takes; returns -1 if the connection was freed.
 * The queue goes first: it holds what precedes any pending pages. */
static int flush(struct conn *c)
{
	for (;;) {
		ssize_t n;
		int from_pages = 0;
		if (evbuffer_get_length(c->out)) {
			n = send_queued(c);
		} else if (c->tx_left) {
			struct iovec v = { (void *)c->tx_ptr, c->tx_left };
			n = stream_sendv(c->s, &v, 1);
			from_pages = 1;
		} else {
			break;
		}
		if (n > 0) {
			if (from_pages) {
				c->tx_ptr += n;
				c->tx_left -= (size_t)n;
				if (!c->tx_left)
					release_tx(c);
			}
			account_sent(c, (size_t)n);
			continue;
		}
		if (n == -EAGAIN || n == -EINTR)
			break;
		log_debug("%s: write failed: %s", c->peer, n < 0 ? strerror((int)-n) : "closed");
		conn_free(c);
		return -1;
	}
	size_t pending = evbuffer_get_length(c->out) + c->tx_left;
	if (pending == 0 && c->state == CONN_CLOSING) {
		conn_free(c);
		return -1;
	}
	if (pending)
		arm_write(c);
	if (c->state != CONN_CLOSING) {
		uint64_t high = c->srv->opt.conn_output_max;
		if (c->tx_left || c->buf_wait || pending > high || !output_room(c))
			set_reading(c, 0);
		else if (pending < high / 4)
			set_reading(c, 1);
	}
	return 0;
}

static void on_write(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct conn *c = arg;
	int was_reading = c->reading;
	if (flush(c) < 0)
		return;
	/* Output drained: serve what dispatch held back (frames left in the
	 * stage, or input waiting in the kernel since reading paused). The
	 * client may have sent everything already and be waiting on us. */
	if ((c->reading && !was_reading) || frame_reader_staged(&c->reader))
		read_input(c);
}

/* Book a queued frame of total bytes, sent of them already written: a reply
 * also takes its place in the in-flight window until its last byte leaves. */
static void track_queued(struct conn *c, size_t total, size_t sent, int is_reply)
{
	if (c->queued_bytes == c->sent_bytes) /* the write-stall clocks start now */
		c->last_out_ms = c->busy_ms = c->w->now_ms;
	c->queued_bytes += total;
	if (is_reply && c->ring_count < c->ring_cap) {
		c->reply_end[(c->ring_head + c->ring_count) % c->ring_cap] = c->queued_bytes;
		c->ring_count++;
	}
	account_sent(c, sent);
}

/* Queue bytes of one reply; large ones go out directly while the queue is empty. */
static void queue_reply(struct conn *c, const struct iovec *iov, int iovcnt, int is_reply)
{
	size_t total = 0;
	for (int i = 0; i < iovcnt; i++)
		total += iov[i].iov_len;
	size_t sent = 0;
	if (total >= DIRECT_SEND && evbuffer_get_length(c->out) == 0) {
		ssize_t n = stream_sendv(c->s, iov, iovcnt);
		if (n > 0)
			sent = (size_t)n;
	}
	/* Copy what is left now: the pages may change once we return. */
	size_t skip = sent;
	for (int i = 0; i < iovcnt; i++) {
		if (skip >= iov[i].iov_len) {
			skip -= iov[i].iov_len;
			continue;
		}
		evbuffer_add(c->out, (const uint8_t *)iov[i].iov_base + skip, iov[i].iov_len - skip);
		skip = 0;
	}
	track_queued(c, total, sent, is_reply);
}

/* Queue a reply; its CRC is computed over iov unless page_raw gives the raw
 * CRCs of the pages that follow an optional first piece of prefix_len bytes. */
static void reply(struct conn *c, const struct frame_hdr *req, uint16_t status, uint8_t flags,
		  const struct iovec *iov, int iovcnt, const uint32_t *page_raw,
		  size_t prefix_len)
{
	struct iovec v[SPILL_MAX_BATCH_PAGES + 2];
	struct spill_wire_hdr w;
	struct frame_hdr h;
	uint32_t len = 0;
	for (int i = 0; i < iovcnt; i++)
		len += (uint32_t)iov[i].iov_len;
	frame_reply_hdr(req, status, len, &h);
	h.flags = flags;
	frame_hdr_pack(&h, &w);
	if (page_raw)
		w.crc = htole32(frame_crc_from_pages(&w, prefix_len ? iov[0].iov_base : NULL,
						     prefix_len, page_raw,
						     (len - prefix_len) / SPILL_PAGE_SIZE));
	else
		frame_seal(&w, iov, iovcnt);
	v[0] = (struct iovec){ &w, sizeof(w) };
	if (iovcnt)
		memcpy(&v[1], iov, (size_t)iovcnt * sizeof(*iov));
	queue_reply(c, v, iovcnt + 1, 1);
}

void conn_reply(struct conn *c, const struct frame_hdr *req, uint16_t status, uint8_t flags,
		const struct iovec *iov, int iovcnt)
{
	reply(c, req, status, flags, iov, iovcnt, NULL, 0);
}

void conn_reply_absent(struct conn *c, const struct frame_hdr *req, const struct iovec *iov,
		       int iovcnt, const uint32_t *page_raw)
{
	reply(c, req, SPILL_ST_ABSENT, SPILL_WF_PRESENT_MAP, iov, iovcnt, page_raw,
	      SPILL_PRESENT_MAP_BYTES);
}

void conn_reply_pages(struct conn *c, const struct frame_hdr *req, struct reg_extent *e,
		      const uint8_t *mem, size_t len)
{
	uint32_t page_raw[SPILL_MAX_BATCH_PAGES];
	for (size_t i = 0; i < len / SPILL_PAGE_SIZE; i++)
		page_raw[i] = atomic_load_explicit(&e->page_crc[req->page + i], memory_order_relaxed);
	struct iovec data = { (void *)mem, len };
	/* Zero copy only at the head of the output: anything queued goes first. */
	if (len < DIRECT_SEND || c->tx_left || c->state == CONN_CLOSING ||
	    evbuffer_get_length(c->out)) {
		reply(c, req, SPILL_ST_OK, 0, &data, 1, page_raw, 0);
		return;
	}
	struct spill_wire_hdr w;
	struct frame_hdr h;
	frame_reply_hdr(req, SPILL_ST_OK, (uint32_t)len, &h);
	frame_hdr_pack(&h, &w);
	w.crc = htole32(frame_crc_from_pages(&w, NULL, 0, page_raw, len / SPILL_PAGE_SIZE));
	struct iovec v[2] = { { &w, sizeof(w) }, data };
	ssize_t n = stream_sendv(c->s, v, 2);
	size_t sent = n > 0 ? (size_t)n : 0;
	if (sent < sizeof(w))
		evbuffer_add(c->out, (uint8_t *)&w + sent, sizeof(w) - sent);
	size_t data_sent = sent > sizeof(w) ? sent - sizeof(w) : 0;
	if (data_sent < len) {
		/* The rest leaves from the extent itself; pin it until then. */
		registry_extent_hold(e);
		c->tx_ext = e;
		c->tx_ptr = mem + data_sent;
		c->tx_left = len - data_sent;
	}
	track_queued(c, sizeof(w) + len, sent, 1);
	if (c->tx_left)
		set_reading(c, 0);
}

/* Queue an unsolicited control frame (no request, no place in the window).
 * The queue is written before the pages of a zero-copy reply still leaving
 * (tx_left), so those pages join the queue first: otherwise the frame would
 * land inside that reply's bytes. */
static void queue_ctrl(struct conn *c, const void *payload, size_t len)
{
	if (c->tx_left) {
		if (evbuffer_add(c->out, c->tx_ptr, c->tx_left)) {
			conn_fail(c, STATS_ERR_PROTOCOL, "out of memory for a notification");
			return;
		}
		release_tx(c);
	}
	struct iovec iov = { (void *)payload, len };
	struct frame_hdr h = { .op = SPILL_OP_CTRL, .payload_len = (uint32_t)len };
	struct spill_wire_hdr w;
	frame_hdr_pack(&h, &w);
	frame_seal(&w, &iov, 1);
	struct iovec v[2] = { { &w, sizeof(w) }, iov };
	queue_reply(c, v, 2, 0);
}

void conn_reply_ctrl(struct conn *c, const struct frame_hdr *req, const Spillway__Ctrl *msg)
{
	uint8_t stack[4096], *buf = stack;
	size_t len = ctrl_packed_size(msg);
	if (len > sizeof(stack) && !(buf = malloc(len))) {
		conn_fail(c, STATS_ERR_PROTOCOL, "out of memory for a control reply");
		return;
	}
	if (ctrl_pack(msg, buf, len) < 0) {
		/* Larger than a control frame may be: say so, send nothing else. */
		if (buf != stack)
			free(buf);
		if (req)
			conn_reply_error(c, req, SPILL_ST_EINTERNAL, "reply too large for one control frame");
		return;
	}
	struct iovec iov = { buf, len };
	if (req)
		conn_reply(c, req, SPILL_ST_OK, 0, &iov, 1);
	else
		queue_ctrl(c, buf, len);
	if (buf != stack)
		free(buf);
}

int conn_send_ctrl(struct conn *c, const void *payload, size_t len)
{
	queue_ctrl(c, payload, len);
	return flush(c);
}

void conn_reply_error(struct conn *c, const struct frame_hdr *req, uint16_t status,
		      const char *message)
{
	if ((req->op & ~SPILL_OP_REPLY) != SPILL_OP_CTRL) {
		conn_reply(c, req, status, 0, NULL, 0);
		return;
	}
	Spillway__Error e = SPILLWAY__ERROR__INIT;
	e.status = status;
	e.message = (char *)message;
	Spillway__Ctrl m = SPILLWAY__CTRL__INIT;
	m.msg_case = SPILLWAY__CTRL__MSG_ERROR;
	m.error = &e;
	uint8_t buf[1200];
	int len = ctrl_pack(&m, buf, sizeof(buf));
	struct iovec iov = { buf, len > 0 ? (size_t)len : 0 };
	conn_reply(c, req, status, 0, &iov, len > 0 ? 1 : 0);
}

void conn_fail(struct conn *c, enum stats_err kind, const char *why)
{
	if (c->state == CONN_CLOSING)
		return;
	log_warn("%s: closing connection: %s", c->peer, why);
	metrics_inc(&server_stats.errors[kind], 1);
	c->state = CONN_CLOSING;
	set_reading(c, 0);
	/* Keep a short error reply; a backlog a broken client will not read
	 * would only pin memory. */
	if (evbuffer_get_length(c->out) + c->tx_left > CLOSING_KEEP) {
		evbuffer_drain(c->out, evbuffer_get_length(c->out));
		release_tx(c);
	}
}

void conn_drain(struct conn *c)
{
	/* Requests the client has already sent sit in the socket: serve them. */
	if (c->state != CONN_CLOSING && read_input(c) < 0)
		return;
	c->state = CONN_CLOSING;
	set_reading(c, 0);
	flush(c);
}

void conn_abort(struct conn *c)
{
	conn_free(c);
}

static enum stats_op op_index(uint16_t op)
{
	switch (op) {
	case SPILL_OP_READ: return STATS_OP_READ;
	case SPILL_OP_WRITE: return STATS_OP_WRITE;
	case SPILL_OP_INVALIDATE: return STATS_OP_INVALIDATE;
	case SPILL_OP_CTRL: return STATS_OP_CTRL;
	default: return STATS_OP_PING;
	}
}

/* The frame reader's done callback: a whole frame, its checksum checked
 * (crc_err). Act on it. Always 0: a failure closes the connection through
 * conn_fail, which stops the reader through can_dispatch. */
static int conn_done(void *arg, const struct frame_hdr *h, const struct frame_land *l,
		     int crc_err)
{
	struct conn *c = arg;
	uint8_t *payload = l->nseg ? l->seg[0].iov_base : NULL;
	if (crc_err) {
		/* Nothing of it reached an extent. */
		conn_fail(c, STATS_ERR_CRC, "frame checksum mismatch");
		return 0;
	}
	if (c->ring_count >= c->ring_cap) {
		conn_fail(c, STATS_ERR_INFLIGHT, "too many requests in flight");
		return 0;
	}
	uint64_t t0 = now_ns();
	if (h->op == SPILL_OP_CTRL)
		control_handle(c, h, payload);
	else
		dataplane_handle(c, h, payload);
	if (!c->authenticated && (c->state == CONN_READY || c->state == CONN_REGISTERED)) {
		c->authenticated = 1;
		admission_authenticated(&c->adm);
	}
	/* Idle connections keep no large buffer (a big control frame is rare). */
	if (c->payload_cap > STAGE_BYTES)
		drop_payload(c);
	enum stats_op op = op_index(h->op);
	metrics_inc(&server_stats.ops[op], 1);
	metrics_hist_observe(&server_stats.latency[op], now_ns() - t0);
	return 0;
}

/* A payload buffer of len bytes: 0 when c->payload has room,
 * FRAME_LAND_WAIT when the frame-buffer budget cannot give it yet (c stops
 * reading; the sweep asks again), -ENOMEM when the connection failed. */
static int payload_buffer(struct conn *c, size_t len)
{
	if (len <= c->payload_cap)
		return 0;
	size_t charge = len > STAGE_BYTES ? len : 0;
	atomic_uint_fast64_t *share = c->client ? &c->client->frame_buffer_bytes : NULL;
	int by_share = 0;
	if (charge && !admission_frame_buffer_take(share, charge, &by_share)) {
		if (!c->buf_wait)
			admission_count_frame_buffer_wait(by_share);
		c->buf_wait = 1;
		set_reading(c, 0);
		return FRAME_LAND_WAIT;
	}
	drop_payload(c);
	if (!(c->payload = malloc(len))) {
		if (charge)
			admission_frame_buffer_give(share, charge);
		c->buf_wait = 0;
		conn_fail(c, STATS_ERR_PROTOCOL, "out of memory for a frame");
		return -ENOMEM;
	}
	c->payload_cap = len;
	c->payload_charged = charge;
	c->payload_share = share;
	return 0;
}

/* Is a frame with this header refused before its payload? Then the
 * connection is failed. */
static int refuse_frame(struct conn *c, const struct frame_hdr *h)
{
	if (h->op & SPILL_OP_REPLY) {
		conn_fail(c, STATS_ERR_PROTOCOL, "client sent a reply frame");
		return 1;
	}
	/* Before authentication only a handshake's worth is received: this
	 * closes the connection before anything is allocated for the payload. */
	if ((c->state == CONN_HELLO || c->state == CONN_AUTH) &&
	    h->payload_len > CONN_HANDSHAKE_PAYLOAD_MAX) {
		if (h->op != SPILL_OP_CTRL)
			conn_fail(c, STATS_ERR_AUTH, "data frame before the handshake finished");
		else
			conn_fail(c, STATS_ERR_PROTOCOL,
				  "frame before authentication larger than a handshake");
		return 1;
	}
	return 0;
}

/*
 * The frame reader's land callback: a valid header; say where its payload
 * goes. Asked again by the sweep while the frame-buffer budget makes it
 * wait (buf_wait: the header was checked already).
 *
 * Every payload, a WRITE's too, lands in the connection's payload buffer,
 * never in an extent: received bytes must not overwrite acknowledged data
 * before the frame is whole and checked, and a WRITE older than what its
 * pages hold must not reach them at all (dataplane.c commits it, by
 * version, under the extent's lock). The copy this costs is measured in
 * docs/benchmarks.md.
 */
static int conn_land(void *arg, const struct frame_hdr *h, struct frame_land *l)
{
	struct conn *c = arg;
	if (!c->buf_wait) {
		if (refuse_frame(c, h))
			return -EPROTO;
		/* Counted from the header on: a client resuming the identity
		 * while this frame is still arriving starts above it. */
		if ((h->op == SPILL_OP_WRITE || h->op == SPILL_OP_INVALIDATE) && c->client)
			registry_note_write_version(c->client, h->wver);
	}
	int rc = payload_buffer(c, h->payload_len);
	if (rc)
		return rc;
	uint8_t *dst = c->payload;
	c->buf_wait = 0;
	c->frame_used_ms = 0;
	c->frame_tick_ms = c->w->now_ms;
	if (h->payload_len) {
		l->seg[0] = (struct iovec){ dst, h->payload_len };
		l->nseg = 1;
	}
	/* A WRITE's page CRCs come with its check; the extent keeps them. */
	if (h->op == SPILL_OP_WRITE)
		l->page_crc = c->rx_page_crc;
	return 0;
}

static int conn_bad_header(void *arg, const char *why)
{
	conn_fail(arg, STATS_ERR_PROTOCOL, why);
	return -EPROTO;
}

static int conn_more(void *arg)
{
	return can_dispatch(arg);
}

static const struct frame_reader_ops conn_rx_ops = {
	.bad_header = conn_bad_header,
	.land = conn_land,
	.done = conn_done,
	/* While a reply's pages are still leaving, dispatch nothing more: a
	 * later WRITE must not change them, and later replies go after them. */
	.more = conn_more,
};

/* May more frames be acted on now? Not while a reply's pages are still
 * leaving, nor while the next frame waits for a buffer, nor while the
 * copied output is over its bound or the server's. */
static int can_dispatch(struct conn *c)
{
	return c->state != CONN_CLOSING && !c->tx_left && !c->buf_wait &&
	       evbuffer_get_length(c->out) <= c->srv->opt.conn_output_max && output_room(c);
}

/* Act on staged frames as far as output room allows. -1 if freed. */
static int drain_stage(struct conn *c)
{
	while (frame_reader_staged(&c->reader) && can_dispatch(c)) {
		size_t before = c->reader.stage_off;
		frame_reader_consume(&c->reader); /* failures went through conn_fail */
		if (flush(c) < 0)
			return -1;
		if (c->reader.stage_off == before)
			break;
	}
	return 0;
}

/*
 * Read and act on what the socket holds. Returns -1 if the connection was
 * freed. Frames already staged go first; while some are held back no more is
 * read, and on_write resumes once output drains. A short read means the
 * socket is drained, which saves the extra recv that would only say EAGAIN.
 */
static int read_input(struct conn *c)
{
	for (int round = 0; round < READ_ROUNDS; round++) {
		if (drain_stage(c) < 0)
			return -1;
		if (frame_reader_staged(&c->reader) || !c->reading)
			break;
		size_t want;
		ssize_t n = frame_reader_recv(&c->reader, c->s, 0, &want);
		if (n == -ENOMEM && !c->reader.stage) {
			conn_fail(c, STATS_ERR_PROTOCOL, "out of memory for input");
			return flush(c);
		}
		if (n > 0) {
			c->last_in_ms = c->w->now_ms;
			/* Act on it now, sending this batch's replies together. */
			if (drain_stage(c) < 0 || flush(c) < 0)
				return -1;
			if ((size_t)n < want)
				break;
			continue;
		}
		if (n == -EAGAIN || n == -EINTR)
			break;
		if (n == 0 && frame_reader_inside(&c->reader))
			conn_fail(c, STATS_ERR_PROTOCOL, "connection closed inside a frame");
		else
			log_debug("%s: disconnected", c->peer);
		conn_free(c);
		return -1;
	}
	return flush(c);
}

static void on_read(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	read_input(arg);
}

/* STREAM_EVENTS: input, room to send or connection events (stream.h). */
static void on_events(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct conn *c = arg;
	int err = stream_process(c->s);
	if (err) {
		/* Nothing can be sent any more: requests still buffered could
		 * never be answered, and the client counts them as not done. */
		log_debug("%s: disconnected (%s)", c->peer, strerror(-err));
		conn_free(c);
		return;
	}
	if (c->want_write) {
		c->want_write = 0;
		if (flush(c) < 0)
			return;
	}
	if (c->reading || frame_reader_staged(&c->reader))
		read_input(c);
}

/* Is there room in the server-wide output cap? If not, the connection is
 * held: it takes no new request until the sweep finds room again. One not
 * registered with nothing queued is never held (see the top of this file). */
static int output_room(struct conn *c)
{
	if (admission_output_room())
		return 1;
	if (c->state != CONN_REGISTERED && !c->tx_left && !evbuffer_get_length(c->out)) {
		c->held = 0;
		return 1;
	}
	if (!c->held)
		admission_count_output_wait();
	c->held = 1;
	return 0;
}

static atomic_uint_fast64_t timeout_log_ms, timeout_log_skipped;

/* Close c for a timeout: counted, one log line per interval at most (a peer
 * can cause these at will). */
static void close_timed_out(struct conn *c, enum admission_timeout kind, const char *why)
{
	uint64_t skipped;
	admission_count_timeout(kind);
	if (admission_log_ok(&timeout_log_ms, &timeout_log_skipped, &skipped))
		log_warn("%s: closing connection: %s (%llu more closed by timeouts since the "
			 "last such line)", c->peer, why, (unsigned long long)skipped);
	else
		log_debug("%s: closing connection: %s", c->peer, why);
	conn_free(c);
}

/*
 * The idle timeout, by default, applies only to connections without a
 * registered identity: a pager or swap connection may legitimately say
 * nothing for hours, and closing it would cost the client a reconnect (and a
 * swap device a stall) for nothing; its registration already bounds what it
 * can hold. Operator sessions (spillctl, including `events --follow`, which
 * polls) and peers reporting to an arbiter send requests every few seconds,
 * so only abandoned sessions and probes are cut. --idle-timeout-all extends
 * it to registered connections too.
 *
 * The write-stall timeout closes a connection with queued output that took
 * no byte for --write-stall-timeout, or, while all connections' output is
 * near --output-max, whose queue has not been empty for that long (see the
 * top of this file). A frame in progress is closed after the same time of
 * reading; connections waiting for the frame-buffer budget get it here.
 */
void conn_sweep(struct worker *w)
{
	const struct server_options *o = &w->srv->opt;
	uint64_t now = w->now_ms;
	for (struct conn *c = w->conns, *next; c; c = next) {
		next = c->next;
		size_t pending = evbuffer_get_length(c->out) + c->tx_left;
		if (!c->authenticated && now - c->start_ms >= o->handshake_timeout_s * 1000ull) {
			close_timed_out(c, ADM_TIMEOUT_HANDSHAKE, "not authenticated in time");
			continue;
		}
		uint64_t stall_ms = o->write_stall_timeout_s * 1000ull;
		if (pending && (now - c->last_out_ms >= stall_ms ||
				(now - c->busy_ms >= stall_ms && !admission_output_room()))) {
			close_timed_out(c, ADM_TIMEOUT_WRITE_STALL, "replies left unread");
			continue;
		}
		if (frame_reader_in_payload(&c->reader)) {
			/* Only time the server was reading counts against the frame. */
			if (c->reading)
				c->frame_used_ms += now - c->frame_tick_ms;
			c->frame_tick_ms = now;
			if (c->frame_used_ms >= o->frame_stall_timeout_s * 1000ull) {
				close_timed_out(c, ADM_TIMEOUT_FRAME_STALL, "frame not finished in time");
				continue;
			}
		}
		if (o->idle_timeout_s && !pending && !c->held && !c->buf_wait &&
		    (c->state != CONN_REGISTERED || o->idle_timeout_all) &&
		    now - c->last_in_ms >= o->idle_timeout_s * 1000ull) {
			close_timed_out(c, ADM_TIMEOUT_IDLE, "idle");
			continue;
		}
		if (now - c->last_in_ms >= STAGE_KEEP_MS)
			frame_reader_trim(&c->reader);
		if (c->buf_wait && c->state != CONN_CLOSING) {
			int rc = frame_reader_land(&c->reader);
			if (rc < 0)
				flush(c); /* may free c */
			else if (rc == 0) {
				set_reading(c, 1);
				read_input(c); /* may free c */
			}
			continue;
		}
		if (c->held && admission_output_room()) {
			c->held = 0;
			read_input(c); /* may free c */
		}
	}
}
