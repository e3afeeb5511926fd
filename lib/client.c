/* SPDX-License-Identifier: MIT */
/*
 * Core client: framing over a non-blocking stream (stream.h), the request
 * window, and the handshake. The receive side is the shared frame reader
 * (frame_reader.h); its landing callback (client_land) checks each reply
 * against the request it answers and lands a READ's payload straight in
 * the caller's pages, so a 2 MiB READ costs no copy.
 *
 * Over RDMA, READ and WRITE of an extent whose remote key the connection
 * knows go as one-sided operations instead of frames; the key comes from a
 * KEY round trip the first time an extent is used, then from a cache.
 */
#include "client.h"

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "frame.h"
#include "frame_reader.h"
#include "rkey_cache.h"
#include "transport.h"

#define OUT_BYTES     (256 * 1024) /* small frames queue here until a wait */
#define OUT_SMALL     (16 * 1024)  /* payloads up to this are queued, not sent */
#define SLOT_BITS     16
#define SLOT_MASK     ((1u << SLOT_BITS) - 1)
#define WINDOW_MAX    4096

enum slot_kind { SLOT_FREE, SLOT_DATA, SLOT_CTRL, SLOT_KEY };

struct slot {
	enum slot_kind kind;
	uint32_t gen;
	struct client_req *req;   /* SLOT_DATA */
	Spillway__Ctrl *reply;    /* SLOT_CTRL: unpacked reply */
	int status;               /* SLOT_CTRL: -errno from the frame */
	int done;                 /* SLOT_CTRL, SLOT_KEY */
	uint8_t key[SPILL_WIRE_KEY_SIZE]; /* SLOT_KEY: the reply's payload */
};

#define NOTIFY_KEPT 16 /* notifications held while no callback is set */
/* Notifications waiting for the current call to return, at most: beyond
 * either bound the server is flooding us and the connection ends with
 * -ENOBUFS (a server pushes one Reclaim or Drain at a time). */
#define NOTIFY_QUEUE_MAX       64
#define NOTIFY_QUEUE_MAX_BYTES (1024 * 1024) /* packed control payloads */

struct notify {
	struct notify *next;
	Spillway__Ctrl *msg;
	size_t bytes;             /* its packed size, counted in notify_bytes */
};

struct client {
	struct stream *s;
	int timeout_ms;
	int dead;                 /* -errno once the stream is unusable */
	unsigned window;
	int inflight;
	uint64_t extent_bytes;

	struct slot *slots;
	unsigned *free_slots;     /* stack of free slot indexes */
	unsigned nfree;
	struct client_req **ready; /* completed async requests, FIFO ring */
	unsigned ready_head, ready_count;

	/* Small frames waiting to be sent in one write. */
	uint8_t *out;
	size_t out_len;

	/* Receive side: the reader, and what the frame it receives answers. */
	struct frame_reader reader;
	int rx_slot;              /* -1: unsolicited control message */
	uint8_t map_scratch[SPILL_PRESENT_MAP_BYTES];
	uint8_t *ctrl_buf;

	struct notify *notify_head, **notify_tail;
	unsigned notify_count;    /* queued, <= NOTIFY_QUEUE_MAX */
	size_t notify_bytes;      /* their packed sizes, <= NOTIFY_QUEUE_MAX_BYTES */
	client_notify_fn notify_fn;
	void *notify_arg;
	int depth;                /* nesting of public calls; notify at depth 0 */

	/* RDMA: remote keys, while the server grants them (NULL: frames only). */
	struct rkey_cache *keys;

	_Atomic uint64_t own_clock, *write_clock;

	uint64_t id;
	uint8_t token[CTRL_TOKEN_BYTES];
	int resumed;
	struct client_extent *resumed_extents;
	size_t n_resumed;
};

/*
 * A server's error message, as handed to callers in err_text: printable
 * ASCII only, anything else (control bytes, escape sequences, non-ASCII)
 * becomes '?'. It ends up on terminals and in logs.
 */
static void copy_server_text(char *dst, size_t cap, const char *src)
{
	if (!dst || !cap)
		return;
	size_t i = 0;
	for (; src[i] && i + 1 < cap; i++)
		dst[i] = src[i] >= 0x20 && src[i] < 0x7f ? src[i] : '?';
	dst[i] = '\0';
}

/* How far above an identity's newest version a resumed clock starts: more
 * than any number of frames a process can have had on their way. */
#define RESUME_GAP (UINT64_C(1) << 32)

static int fail(struct client *c, int err)
{
	if (!c->dead)
		c->dead = err;
	return c->dead;
}

/* --- receive ------------------------------------------------------------- */

static void complete_slot(struct client *c, unsigned idx, int status)
{
	struct slot *s = &c->slots[idx];
	if (s->kind == SLOT_DATA) {
		struct client_req *r = s->req;
		r->status = status;
		r->done = 1;
		if (!r->sync) {
			unsigned tail = (c->ready_head + c->ready_count) % c->window;
			c->ready[tail] = r;
			c->ready_count++;
		}
		s->kind = SLOT_FREE;
		c->free_slots[c->nfree++] = idx;
		c->inflight--;
	} else {
		s->status = status;
		s->done = 1; /* freed by the waiting client_ctrl */
	}
}

/* A valid header: check it answers a request of ours (or is an unsolicited
 * control message), and say where its payload goes: a READ's pages (and
 * presence map) in the caller's buffers, a key in its slot, a control
 * message in a buffer of its size. */
static int client_land(void *arg, const struct frame_hdr *h, struct frame_land *l)
{
	struct client *c = arg;
	c->rx_slot = -1;

	if (!(h->op & SPILL_OP_REPLY)) {
		/* The server may start a control exchange (Reclaim). */
		if (h->op != SPILL_OP_CTRL)
			return -EPROTO;
	} else {
		unsigned idx = (unsigned)(h->req_id & SLOT_MASK);
		if (idx >= c->window || c->slots[idx].kind == SLOT_FREE ||
		    c->slots[idx].gen != (uint32_t)(h->req_id >> SLOT_BITS))
			return -EPROTO;
		struct slot *s = &c->slots[idx];
		/* One reply per request: a second one for a control or key slot
		 * still waiting to be collected would replace (leak) the first. */
		if (s->kind != SLOT_DATA && s->done)
			return -EPROTO;
		uint16_t op = h->op & ~SPILL_OP_REPLY;
		if ((s->kind == SLOT_CTRL) != (op == SPILL_OP_CTRL) ||
		    (s->kind == SLOT_KEY) != (op == SPILL_OP_KEY))
			return -EPROTO;
		if (s->kind == SLOT_KEY && h->payload_len) {
			l->seg[0] = (struct iovec){ s->key, sizeof(s->key) };
			l->nseg = 1;
		}
		if (s->kind == SLOT_DATA && op != s->req->op)
			return -EPROTO;
		c->rx_slot = (int)idx;
		if (s->kind == SLOT_DATA && h->payload_len) {
			struct client_req *r = s->req;
			/* The codec tied payload_len to npages; tie npages to our buffer. */
			if (h->npages != r->npages)
				return -EPROTO;
			if (h->flags & SPILL_WF_PRESENT_MAP) {
				l->seg[l->nseg].iov_base = r->present ? r->present : c->map_scratch;
				l->seg[l->nseg++].iov_len = SPILL_PRESENT_MAP_BYTES;
			}
			l->seg[l->nseg].iov_base = r->buf;
			l->seg[l->nseg++].iov_len = (size_t)r->npages * SPILL_PAGE_SIZE;
		}
	}
	if (h->op == SPILL_OP_CTRL || h->op == (SPILL_OP_CTRL | SPILL_OP_REPLY)) {
		if (h->payload_len) {
			c->ctrl_buf = malloc(h->payload_len);
			if (!c->ctrl_buf)
				return -ENOMEM;
			l->seg[0].iov_base = c->ctrl_buf;
			l->seg[0].iov_len = h->payload_len;
			l->nseg = 1;
		}
	}
	return 0;
}

/* Queue an unsolicited message until the current call returns; 0, or
 * -ENOBUFS when the queue is full (the caller ends the connection). */
static int queue_notify(struct client *c, Spillway__Ctrl *msg, size_t bytes)
{
	if (c->notify_count >= NOTIFY_QUEUE_MAX ||
	    c->notify_bytes + bytes > NOTIFY_QUEUE_MAX_BYTES) {
		ctrl_free(msg);
		return -ENOBUFS;
	}
	struct notify *n = malloc(sizeof(*n));
	if (!n) {
		ctrl_free(msg);
		return 0; /* dropped, as if it never came: it asked for no answer */
	}
	n->next = NULL;
	n->msg = msg;
	n->bytes = bytes;
	*c->notify_tail = n;
	c->notify_tail = &n->next;
	c->notify_count++;
	c->notify_bytes += bytes;
	return 0;
}

/* A whole frame, its checksum checked (crc_err): complete the request. */
static int client_done(void *arg, const struct frame_hdr *h, const struct frame_land *l,
		       int crc_err)
{
	struct client *c = arg;
	(void)l;
	int crc_ok = crc_err == 0;
	int status = h->status == SPILL_ST_OK ? 0 : -frame_status_to_errno(h->status);

	if ((h->op & ~SPILL_OP_REPLY) == SPILL_OP_CTRL) {
		Spillway__Ctrl *msg = NULL;
		const char *why;
		int err = 0;
		if (crc_ok && h->payload_len)
			msg = ctrl_unpack(c->ctrl_buf, h->payload_len, &err, &why);
		free(c->ctrl_buf);
		c->ctrl_buf = NULL;
		if (!crc_ok)
			return -EBADMSG;
		if (c->rx_slot < 0) {
			if (!msg)
				return -EPROTO;
			return queue_notify(c, msg, h->payload_len);
		}
		if (!msg && status == 0)
			return -EPROTO;
		c->slots[c->rx_slot].reply = msg;
		complete_slot(c, (unsigned)c->rx_slot, status);
		return 0;
	}
	/* The checksum covers the header too: with it wrong, even req_id is
	 * suspect, so nothing on this stream can be trusted any more. */
	if (!crc_ok)
		return -EBADMSG;
	if ((h->op & ~SPILL_OP_REPLY) == SPILL_OP_ALLOC)
		c->slots[c->rx_slot].req->extent = h->extent_id;
	complete_slot(c, (unsigned)c->rx_slot, status);
	return 0;
}

static const struct frame_reader_ops client_rx_ops = {
	.land = client_land,
	.done = client_done,
};

/* Complete the one-sided transfers the stream has finished; returns how
 * many were reaped. */
static int reap_onesided(struct client *c)
{
	if (!c->s->ops->reap_onesided)
		return 0;
	uint64_t cookie[32];
	int status[32], n, reaped = 0;
	while ((n = c->s->ops->reap_onesided(c->s, cookie, status, 32)) > 0) {
		reaped += n;
		for (int i = 0; i < n; i++) {
			unsigned idx = (unsigned)(cookie[i] & SLOT_MASK);
			struct slot *s = &c->slots[idx];
			if (idx >= c->window || s->kind != SLOT_DATA ||
			    s->gen != (uint32_t)(cookie[i] >> SLOT_BITS))
				continue; /* cannot happen: cookies are our req_ids */
			/* One-sided reads cannot tell absent pages apart: the
			 * server zeroed the extent before granting its key. */
			if (s->req->op == SPILL_OP_READ && s->req->present)
				memset(s->req->present, 0xff, SPILL_PRESENT_MAP_BYTES);
			complete_slot(c, idx, status[i]);
		}
	}
	return reaped;
}

/*
 * Read whatever is available, waiting first (up to the timeout) if block.
 * Returns 0 or -errno. A short read means the socket is drained: stop there
 * rather than pay for a recv that can only say EAGAIN.
 */
static int pump_rx(struct client *c, int block)
{
	/* A finished one-sided transfer is progress: its waiter must not then
	 * block for a reply frame that one-sided operations never get. */
	if (reap_onesided(c) > 0)
		block = 0;
	for (;; block = 0) {
		int rc = frame_reader_consume(&c->reader);
		if (rc)
			return fail(c, rc);
		size_t want;
		/* A failing callback's -errno comes back here as well: never
		 * -EAGAIN or -EINTR, so it ends the connection below. */
		ssize_t n = frame_reader_recv(&c->reader, c->s, block, &want);
		if (n > 0) {
			if ((size_t)n < want) {
				rc = frame_reader_consume(&c->reader);
				return rc ? fail(c, rc) : 0;
			}
			continue;
		}
		if (n == -EAGAIN)
			return block ? fail(c, -ETIMEDOUT) : 0;
		if (n == -EINTR) {
			reap_onesided(c);
			return 0;
		}
		return fail(c, n == 0 ? -ECONNRESET : (int)n);
	}
}

/* Block until the socket is readable (or writable if want_out), then pump. */
static int wait_io(struct client *c, int want_out)
{
	if (c->dead)
		return c->dead;
	if (!want_out)
		return pump_rx(c, 1); /* one blocking receive, bounded by the timeout */
	struct pollfd p = { .fd = stream_fd(c->s), .events = POLLIN | POLLOUT };
	int r = poll(&p, 1, c->timeout_ms);
	if (r < 0)
		return errno == EINTR ? 0 : fail(c, -errno);
	if (r == 0)
		return fail(c, -ETIMEDOUT);
	if (p.revents & (POLLIN | POLLHUP | POLLERR))
		return pump_rx(c, 0);
	return 0;
}

/* --- notifications ------------------------------------------------------- */

static void enter(struct client *c)
{
	c->depth++;
}

/* Hand queued notifications to the callback. Without one they wait (a
 * Drain can arrive right behind RegisterReply, before the caller had a
 * chance to set it), the oldest dropped beyond NOTIFY_KEPT. */
static void deliver_notifications(struct client *c)
{
	while (c->notify_head && (c->notify_fn || c->notify_count > NOTIFY_KEPT)) {
		struct notify *n = c->notify_head;
		c->notify_head = n->next;
		if (!c->notify_head)
			c->notify_tail = &c->notify_head;
		c->notify_count--;
		c->notify_bytes -= n->bytes;
		if (c->notify_fn)
			c->notify_fn(c, n->msg, c->notify_arg);
		else
			ctrl_free(n->msg);
		free(n);
	}
}

static int leave(struct client *c, int rc)
{
	if (--c->depth == 0)
		deliver_notifications(c);
	return rc;
}

/* --- send ---------------------------------------------------------------- */

static int send_all(struct client *c, struct iovec *iov, int n)
{
	while (n > 0) {
		if (c->dead)
			return c->dead;
		ssize_t w = stream_sendv(c->s, iov, n);
		if (w == -EAGAIN) {
			/* Keep reading replies while we wait, or both sides could
			 * block on full socket buffers. */
			int rc = wait_io(c, 1);
			if (rc)
				return rc;
			continue;
		}
		if (w < 0)
			return fail(c, (int)w);
		size_t done = (size_t)w;
		while (n > 0 && done >= iov->iov_len) {
			done -= iov->iov_len;
			iov++;
			n--;
		}
		if (n > 0) {
			iov->iov_base = (uint8_t *)iov->iov_base + done;
			iov->iov_len -= done;
		}
	}
	return 0;
}

static int flush_out(struct client *c)
{
	if (!c->out_len)
		return 0;
	struct iovec iov = { c->out, c->out_len };
	c->out_len = 0;
	return send_all(c, &iov, 1);
}

/*
 * Small frames are queued and leave together at the next wait (one write for
 * many requests); a large payload flushes the queue and goes out directly,
 * without a copy.
 */
static int send_frame(struct client *c, struct frame_hdr *h, const void *payload)
{
	struct spill_wire_hdr w;
	struct iovec iov[2] = {
		{ &w, sizeof(w) },
		{ (void *)payload, h->payload_len },
	};
	frame_hdr_pack(h, &w);
	frame_seal(&w, &iov[1], h->payload_len ? 1 : 0);
	size_t total = sizeof(w) + h->payload_len;
	if (h->payload_len <= OUT_SMALL) {
		if (c->out_len + total > OUT_BYTES) {
			int rc = flush_out(c);
			if (rc)
				return rc;
		}
		memcpy(c->out + c->out_len, &w, sizeof(w));
		if (h->payload_len)
			memcpy(c->out + c->out_len + sizeof(w), payload, h->payload_len);
		c->out_len += total;
		return 0;
	}
	int rc = flush_out(c);
	if (rc)
		return rc;
	return send_all(c, iov, h->payload_len ? 2 : 1);
}

int client_flush(struct client *c)
{
	if (c->dead)
		return c->dead;
	enter(c);
	return leave(c, flush_out(c));
}

/* Wait for a free slot; returns its index or -errno. */
static int take_slot(struct client *c, enum slot_kind kind)
{
	while (c->nfree == 0) {
		/* Replies only come for requests that have left. */
		int rc = flush_out(c);
		if (!rc)
			rc = wait_io(c, 0);
		if (rc)
			return rc;
	}
	unsigned idx = c->free_slots[--c->nfree];
	struct slot *s = &c->slots[idx];
	s->kind = kind;
	s->gen++;
	s->req = NULL;
	s->reply = NULL;
	s->done = 0;
	s->status = 0;
	if (kind == SLOT_DATA)
		c->inflight++;
	return (int)idx;
}

static uint64_t slot_req_id(const struct client *c, unsigned idx)
{
	return ((uint64_t)c->slots[idx].gen << SLOT_BITS) | idx;
}

void client_set_notify(struct client *c, client_notify_fn fn, void *arg)
{
	c->notify_fn = fn;
	c->notify_arg = arg;
	if (c->depth == 0)
		deliver_notifications(c);
}

/* --- data requests ------------------------------------------------------- */

/* Ask the server for extent's remote key (one round trip). 0 or -errno:
 * -ENOTSUP when this connection cannot do one-sided operations at all. */
static int key_fetch(struct client *c, uint64_t extent, struct rkey_entry *out)
{
	int idx = take_slot(c, SLOT_KEY);
	if (idx < 0)
		return idx;
	struct slot *s = &c->slots[idx];
	struct frame_hdr h = { .op = SPILL_OP_KEY, .req_id = slot_req_id(c, (unsigned)idx),
			       .extent_id = extent };
	int rc = send_frame(c, &h, NULL);
	if (!rc)
		rc = flush_out(c);
	while (!rc && !s->done)
		rc = wait_io(c, 0);
	if (!rc)
		rc = s->status;
	if (!rc) {
		struct spill_wire_key k;
		memcpy(&k, s->key, sizeof(k));
		*out = (struct rkey_entry){ extent, le64toh(k.addr), le32toh(k.rkey),
					    le32toh(k.npages) };
	}
	if (s->done || !c->dead) {
		s->kind = SLOT_FREE;
		c->free_slots[c->nfree++] = (unsigned)idx;
	}
	return rc;
}

/* Can r go one-sided? Fetches and caches the key on first use. A refusal
 * leaves r to the frame path, where the server explains it; -ENOTSUP turns
 * one-sided operations off for this connection. */
static int find_key(struct client *c, const struct client_req *r, struct rkey_entry *key)
{
	if (!c->keys)
		return 0;
	if (!rkey_cache_get(c->keys, r->extent, key)) {
		int rc = key_fetch(c, r->extent, key);
		if (rc == -ENOTSUP) {
			free(c->keys);
			c->keys = NULL;
		}
		if (rc)
			return 0;
		rkey_cache_put(c->keys, key);
	}
	return (uint64_t)r->page + r->npages <= key->npages;
}

static int post_onesided(struct client *c, struct client_req *r, const struct rkey_entry *key,
			 unsigned idx)
{
	size_t len = (size_t)r->npages * SPILL_PAGE_SIZE;
	uint64_t raddr = key->addr + (uint64_t)r->page * SPILL_PAGE_SIZE;
	for (;;) {
		int rc = c->s->ops->post_onesided(c->s, r->op == SPILL_OP_WRITE, raddr, key->rkey,
						  r->buf, len, r->req_id);
		if (rc != -EAGAIN) {
			if (rc) {
				c->slots[idx].kind = SLOT_FREE;
				c->free_slots[c->nfree++] = idx;
				c->inflight--;
				return fail(c, rc);
			}
			return 0;
		}
		/* Every bounce buffer is busy: wait for a transfer to finish. */
		rc = flush_out(c);
		if (!rc)
			rc = wait_io(c, 0);
		if (rc)
			return rc;
	}
}

int client_rdma_key_get(struct client *c, uint64_t extent, uint64_t *addr, uint32_t *rkey)
{
	if (!c->keys)
		return -ENOTSUP;
	struct rkey_entry k;
	enter(c);
	struct client_req r = { .op = SPILL_OP_READ, .extent = extent, .npages = 1 };
	if (!find_key(c, &r, &k))
		return leave(c, c->dead ? c->dead : -ENOENT);
	*addr = k.addr;
	*rkey = k.rkey;
	return leave(c, 0);
}

int client_rdma_key_set(struct client *c, uint64_t extent, uint64_t addr, uint32_t rkey,
			uint32_t npages)
{
	if (!c->keys)
		return -ENOTSUP;
	rkey_cache_put(c->keys, &(struct rkey_entry){ extent, addr, rkey, npages });
	return 0;
}

int client_submit(struct client *c, struct client_req *r)
{
	if (c->dead)
		return c->dead;
	uint32_t payload = 0;
	switch (r->op) {
	case SPILL_OP_WRITE:
		payload = (uint32_t)r->npages * SPILL_PAGE_SIZE;
		/* fall through */
	case SPILL_OP_READ:
	case SPILL_OP_INVALIDATE:
		if (r->npages == 0 || r->npages > SPILL_MAX_BATCH_PAGES)
			return -EINVAL;
		if (r->op != SPILL_OP_INVALIDATE && !r->buf)
			return -EINVAL;
		break;
	case SPILL_OP_PING:
	case SPILL_OP_ALLOC:
	case SPILL_OP_FREE:
		break;
	default:
		return -EINVAL;
	}
	enter(c);
	struct rkey_entry key;
	int onesided = (r->op == SPILL_OP_READ || r->op == SPILL_OP_WRITE) &&
		       find_key(c, r, &key);
	if (c->dead)
		return leave(c, c->dead);
	if (r->op == SPILL_OP_FREE && c->keys)
		rkey_cache_drop(c->keys, r->extent);
	int idx = take_slot(c, SLOT_DATA);
	if (idx < 0)
		return leave(c, idx);
	c->slots[idx].req = r;
	r->done = 0;
	r->status = 0;
	r->req_id = slot_req_id(c, (unsigned)idx);
	if (onesided)
		return leave(c, post_onesided(c, r, &key, (unsigned)idx));
	struct frame_hdr h = {
		.op = r->op, .req_id = r->req_id, .extent_id = r->extent,
		.page = r->page,
		.npages = (r->op == SPILL_OP_READ || r->op == SPILL_OP_WRITE ||
			   r->op == SPILL_OP_INVALIDATE) ? r->npages : 0,
		.payload_len = payload,
	};
	/* The version is taken as the frame leaves: a later write of the same
	 * pages, on any connection sharing the clock, gets a newer one. */
	if (r->op == SPILL_OP_WRITE || r->op == SPILL_OP_INVALIDATE) {
		h.wver = atomic_fetch_add(c->write_clock, 1) + 1;
		if (h.wver >= SPILL_WVER_LIMIT) { /* never, unless a peer pushed it there */
			c->slots[idx].kind = SLOT_FREE;
			c->free_slots[c->nfree++] = (unsigned)idx;
			c->inflight--;
			return leave(c, -EOVERFLOW);
		}
	}
	return leave(c, send_frame(c, &h, r->buf));
}

int client_reap(struct client *c, struct client_req **done, int max, int min)
{
	enter(c);
	if (min > max)
		min = max;
	int frc = flush_out(c);
	if (frc)
		return leave(c, frc);
	if (c->ready_count == 0 && !c->dead) {
		int rc = pump_rx(c, 0);
		if (rc)
			return leave(c, rc);
	}
	while ((int)c->ready_count < min) {
		if (c->inflight == 0)
			break;
		int rc = wait_io(c, 0);
		if (rc)
			return leave(c, rc);
	}
	int n = 0;
	while (n < max && c->ready_count) {
		done[n++] = c->ready[c->ready_head];
		c->ready_head = (c->ready_head + 1) % c->window;
		c->ready_count--;
	}
	if (n == 0 && c->dead)
		return leave(c, c->dead);
	return leave(c, n);
}

int client_inflight(const struct client *c)
{
	return c->inflight;
}

static int run_sync(struct client *c, struct client_req *r)
{
	r->sync = 1;
	int rc = client_submit(c, r);
	if (rc)
		return rc;
	enter(c);
	rc = flush_out(c);
	while (!rc && !r->done)
		rc = wait_io(c, 0);
	if (rc && !r->done)
		return leave(c, rc);
	return leave(c, r->status);
}

int client_read(struct client *c, uint64_t extent, uint32_t page, uint16_t npages,
		void *buf, uint8_t *present)
{
	struct client_req r = { .op = SPILL_OP_READ, .extent = extent, .page = page,
				.npages = npages, .buf = buf, .present = present };
	return run_sync(c, &r);
}

int client_write(struct client *c, uint64_t extent, uint32_t page, uint16_t npages,
		 const void *buf)
{
	struct client_req r = { .op = SPILL_OP_WRITE, .extent = extent, .page = page,
				.npages = npages, .buf = (void *)buf };
	return run_sync(c, &r);
}

int client_invalidate(struct client *c, uint64_t extent, uint32_t page, uint16_t npages)
{
	struct client_req r = { .op = SPILL_OP_INVALIDATE, .extent = extent, .page = page,
				.npages = npages };
	return run_sync(c, &r);
}

int client_ping(struct client *c)
{
	struct client_req r = { .op = SPILL_OP_PING };
	return run_sync(c, &r);
}

/* --- control ------------------------------------------------------------- */

static int send_ctrl(struct client *c, const Spillway__Ctrl *msg, uint64_t req_id,
		     uint16_t op)
{
	size_t len = ctrl_packed_size(msg);
	if (len > SPILL_MAX_CTRL_PAYLOAD)
		return -EMSGSIZE;
	uint8_t *buf = malloc(len ? len : 1);
	if (!buf)
		return -ENOMEM;
	ctrl_pack(msg, buf, len);
	struct frame_hdr h = { .op = op, .req_id = req_id, .payload_len = (uint32_t)len };
	int rc = send_frame(c, &h, buf);
	free(buf);
	return rc;
}

int client_send_ctrl(struct client *c, const Spillway__Ctrl *msg)
{
	if (c->dead)
		return c->dead;
	enter(c);
	int rc = send_ctrl(c, msg, 0, SPILL_OP_CTRL);
	return leave(c, rc ? rc : flush_out(c));
}

int client_ctrl(struct client *c, const Spillway__Ctrl *req, Spillway__Ctrl **reply,
		char *err_text, size_t err_cap)
{
	*reply = NULL;
	if (c->dead)
		return c->dead;
	enter(c);
	int idx = take_slot(c, SLOT_CTRL);
	if (idx < 0)
		return leave(c, idx);
	struct slot *s = &c->slots[idx];
	int rc = send_ctrl(c, req, slot_req_id(c, (unsigned)idx), SPILL_OP_CTRL);
	if (!rc)
		rc = flush_out(c);
	while (!rc && !s->done)
		rc = wait_io(c, 0);
	/* A reply that arrived just before the server closed still counts:
	 * it usually says why the server closed. */
	if (s->done)
		rc = 0;
	if (!rc) {
		rc = s->status;
		if (s->reply && s->reply->msg_case == SPILLWAY__CTRL__MSG_ERROR) {
			copy_server_text(err_text, err_cap, s->reply->error->message);
			if (!rc)
				rc = -frame_status_to_errno((uint16_t)s->reply->error->status);
			ctrl_free(s->reply);
		} else if (!rc) {
			*reply = s->reply;
		} else {
			ctrl_free(s->reply);
		}
	}
	s->reply = NULL;
	if (s->kind == SLOT_CTRL && (s->done || !c->dead)) {
		s->kind = SLOT_FREE;
		c->free_slots[c->nfree++] = (unsigned)idx;
	}
	return leave(c, rc);
}

int client_alloc_extents(struct client *c, unsigned count, int node,
			 struct client_extent *out)
{
	Spillway__AllocExtent a = SPILLWAY__ALLOC_EXTENT__INIT;
	a.count = count;
	a.node = node;
	Spillway__Ctrl req = SPILLWAY__CTRL__INIT, *rep;
	req.msg_case = SPILLWAY__CTRL__MSG_ALLOC_EXTENT;
	req.alloc_extent = &a;
	int rc = client_ctrl(c, &req, &rep, NULL, 0);
	if (rc)
		return rc;
	if (rep->msg_case != SPILLWAY__CTRL__MSG_ALLOC_EXTENT_REPLY ||
	    rep->alloc_extent_reply->n_extents != count) {
		ctrl_free(rep);
		return fail(c, -EPROTO);
	}
	for (unsigned i = 0; i < count; i++) {
		Spillway__ExtentInfo *e = rep->alloc_extent_reply->extents[i];
		out[i] = (struct client_extent){ e->extent_id, e->npages, e->node };
	}
	ctrl_free(rep);
	return 0;
}

int client_free_extents(struct client *c, const uint64_t *ids, unsigned count)
{
	for (unsigned i = 0; c->keys && i < count; i++)
		rkey_cache_drop(c->keys, ids[i]);
	Spillway__FreeExtent f = SPILLWAY__FREE_EXTENT__INIT;
	f.n_extent_ids = count;
	f.extent_ids = (uint64_t *)ids;
	Spillway__Ctrl req = SPILLWAY__CTRL__INIT, *rep;
	req.msg_case = SPILLWAY__CTRL__MSG_FREE_EXTENT;
	req.free_extent = &f;
	int rc = client_ctrl(c, &req, &rep, NULL, 0);
	if (rc)
		return rc;
	ctrl_free(rep);
	return 0;
}

/* --- connection set-up --------------------------------------------------- */

static int handshake(struct client *c, const struct client_opts *o, unsigned max_window,
		     char *err_text, size_t err_cap)
{
	uint8_t cn[AUTH_NONCE_BYTES];
	if (auth_random(cn, sizeof(cn)))
		return -EIO;
	Spillway__Hello hello = SPILLWAY__HELLO__INIT;
	hello.version = SPILL_WIRE_VERSION;
	hello.software = "spillway-client " SPILL_VERSION;
	hello.client_nonce.data = cn;
	hello.client_nonce.len = sizeof(cn);
	Spillway__Ctrl req = SPILLWAY__CTRL__INIT, *rep;
	req.msg_case = SPILLWAY__CTRL__MSG_HELLO;
	req.hello = &hello;
	int rc = client_ctrl(c, &req, &rep, err_text, err_cap);
	if (rc)
		return rc;
	if (rep->msg_case != SPILLWAY__CTRL__MSG_HELLO_REPLY) {
		ctrl_free(rep);
		return -EPROTO;
	}
	Spillway__HelloReply *hr = rep->hello_reply;
	uint8_t sn[AUTH_NONCE_BYTES];
	memcpy(sn, hr->server_nonce.data, sizeof(sn));
	int need_auth = hr->auth_required;
	unsigned w = hr->max_inflight;
	c->extent_bytes = hr->extent_bytes;
	ctrl_free(rep);
	if (o->window && o->window < w)
		w = o->window;
	if (w > max_window)
		w = max_window;
	c->window = w;

	/* A client that holds a key trusts only a server that proves it holds
	 * the same key: "no authentication needed" from a server is exactly what
	 * an impostor would say, so it ends the connection here. */
	if (o->psk && !need_auth) {
		snprintf(err_text, err_cap,
			 "server did not prove the key: it asks for no authentication, "
			 "but this client holds a pre-shared key");
		return -EACCES;
	}
	if (need_auth) {
		if (!o->psk) {
			snprintf(err_text, err_cap, "server requires a pre-shared key (--psk-file)");
			return -EACCES;
		}
		uint8_t mac[AUTH_MAC_BYTES];
		auth_mac(o->psk, AUTH_ROLE_CLIENT, sn, cn, mac);
		Spillway__Auth a = SPILLWAY__AUTH__INIT;
		a.mac.data = mac;
		a.mac.len = sizeof(mac);
		req.msg_case = SPILLWAY__CTRL__MSG_AUTH;
		req.auth = &a;
		rc = client_ctrl(c, &req, &rep, err_text, err_cap);
		if (rc)
			return rc;
		int ok = rep->msg_case == SPILLWAY__CTRL__MSG_AUTH_REPLY &&
			 auth_check(o->psk, AUTH_ROLE_SERVER, sn, cn, rep->auth_reply->mac.data) == 0;
		ctrl_free(rep);
		if (!ok) {
			snprintf(err_text, err_cap, "server could not prove it holds the key");
			return -EACCES;
		}
	}
	if (!o->name)
		return 0;

	Spillway__Register reg = SPILLWAY__REGISTER__INIT;
	reg.name = (char *)o->name;
	reg.priority = o->priority;
	reg.reservation_bytes = o->reservation;
	reg.limit_bytes = o->limit;
	if (o->token) {
		reg.token.data = (uint8_t *)o->token;
		reg.token.len = CTRL_TOKEN_BYTES;
	}
	req.msg_case = SPILLWAY__CTRL__MSG_REGISTER;
	req.register_ = &reg;
	rc = client_ctrl(c, &req, &rep, err_text, err_cap);
	if (rc)
		return rc;
	if (rep->msg_case != SPILLWAY__CTRL__MSG_REGISTER_REPLY) {
		ctrl_free(rep);
		return -EPROTO;
	}
	Spillway__RegisterReply *rr = rep->register_reply;
	c->id = rr->client_id;
	memcpy(c->token, rr->token.data, CTRL_TOKEN_BYTES);
	c->resumed = rr->resumed;
	/* Start above every version this identity has written with. A clock
	 * behind the server's is another process's (a resume after a restart):
	 * frames of the old one may still be on their way, with versions
	 * above what the server has seen, so start a wide gap higher. */
	uint64_t seen = atomic_load(c->write_clock);
	uint64_t start = rr->write_version;
	if (seen < start)
		start = start < SPILL_WVER_LIMIT - RESUME_GAP ? start + RESUME_GAP : SPILL_WVER_LIMIT - 1;
	while (seen < start && !atomic_compare_exchange_weak(c->write_clock, &seen, start))
		;
	if (rr->n_extents) {
		c->resumed_extents = calloc(rr->n_extents, sizeof(*c->resumed_extents));
		if (!c->resumed_extents) {
			ctrl_free(rep);
			return -ENOMEM;
		}
		for (size_t i = 0; i < rr->n_extents; i++)
			c->resumed_extents[i] = (struct client_extent){
				rr->extents[i]->extent_id, rr->extents[i]->npages,
				rr->extents[i]->node };
		c->n_resumed = rr->n_extents;
	}
	ctrl_free(rep);
	return 0;
}

int client_connect(const char *url, const struct client_opts *opts,
		   struct client **out, char *err_text, size_t err_cap)
{
	static const struct client_opts none;
	const struct client_opts *o = opts ? opts : &none;
	char scratch[8];
	if (!err_text) {
		err_text = scratch;
		err_cap = sizeof(scratch);
	}
	err_text[0] = '\0';
	*out = NULL;
	struct client *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : 10000;
	c->write_clock = o->write_clock ? o->write_clock : &c->own_clock;
	frame_reader_init(&c->reader, &client_rx_ops, c);
	c->notify_tail = &c->notify_head;
	/* Until the server states its limit, allow enough slots for the handshake. */
	c->window = WINDOW_MAX;
	c->slots = calloc(WINDOW_MAX, sizeof(*c->slots));
	c->free_slots = calloc(WINDOW_MAX, sizeof(*c->free_slots));
	c->ready = calloc(WINDOW_MAX, sizeof(*c->ready));
	c->out = malloc(OUT_BYTES);
	int rc = -ENOMEM;
	if (!c->slots || !c->free_slots || !c->ready || !c->out)
		goto fail;
	for (unsigned i = 0; i < WINDOW_MAX; i++)
		c->free_slots[i] = WINDOW_MAX - 1 - i;
	c->nfree = WINDOW_MAX;
	char why[320];
	struct transport_params tp = { .timeout_ms = c->timeout_ms, .token = o->token,
				       .why = why, .why_cap = sizeof(why) };
	rc = transport_connect(url, &tp, &c->s);
	if (rc) {
		snprintf(err_text, err_cap, "cannot connect to %s: %s", url,
			 why[0] ? why : strerror(-rc));
		goto fail;
	}
	if (c->s->ops->post_onesided && !(c->keys = calloc(1, sizeof(*c->keys)))) {
		rc = -ENOMEM;
		goto fail;
	}
	rc = handshake(c, o, WINDOW_MAX, err_text, err_cap);
	if (rc)
		goto fail;
	/* Shrink the window: keep only slot indexes below it on the free stack. */
	unsigned n = 0;
	for (unsigned i = 0; i < c->nfree; i++)
		if (c->free_slots[i] < c->window)
			c->free_slots[n++] = c->free_slots[i];
	c->nfree = n;
	*out = c;
	return 0;
fail:
	if (!err_text[0])
		snprintf(err_text, err_cap, "%s", strerror(-rc));
	client_close(c);
	return rc;
}

void client_close(struct client *c)
{
	if (!c)
		return;
	stream_close(c->s);
	free(c->keys);
	while (c->notify_head) {
		struct notify *n = c->notify_head;
		c->notify_head = n->next;
		ctrl_free(n->msg);
		free(n);
	}
	for (unsigned i = 0; c->slots && i < WINDOW_MAX; i++)
		ctrl_free(c->slots[i].reply);
	free(c->ctrl_buf);
	free(c->slots);
	free(c->free_slots);
	free(c->ready);
	frame_reader_free(&c->reader);
	free(c->out);
	free(c->resumed_extents);
	free(c);
}

uint64_t client_id(const struct client *c) { return c->id; }
const uint8_t *client_token(const struct client *c) { return c->token; }
int client_resumed(const struct client *c) { return c->resumed; }
uint64_t client_extent_bytes(const struct client *c) { return c->extent_bytes; }
unsigned client_window(const struct client *c) { return c->window; }
int client_fd(const struct client *c) { return stream_fd(c->s); }
int client_dead(const struct client *c) { return c->dead; }

const struct client_extent *client_resumed_extents(const struct client *c, size_t *n)
{
	*n = c->n_resumed;
	return c->resumed_extents;
}

int client_release_fd(struct client *c)
{
	int fd = -EBUSY;
	int domain = 0;
	socklen_t dlen = sizeof(domain);
	/* The kernel module takes TCP sockets only (an RDMA stream's fd is
	 * no socket at all). */
	if (getsockopt(stream_fd(c->s), SOL_SOCKET, SO_DOMAIN, &domain, &dlen) ||
	    domain == AF_UNIX) {
		client_close(c);
		return -EPROTONOSUPPORT;
	}
	/* Queued notifications do not hold the socket back: nobody would read
	 * them once the kernel has it; client_close frees them. */
	if (!c->dead && c->inflight == 0 && c->out_len == 0 &&
	    frame_reader_idle(&c->reader)) {
		fd = fcntl(stream_fd(c->s), F_DUPFD_CLOEXEC, 0);
		if (fd < 0)
			fd = -errno;
	}
	client_close(c);
	return fd;
}
