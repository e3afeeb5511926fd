/* SPDX-License-Identifier: MIT */
/*
 * The fault proxy (fault_proxy.h). One acceptor thread; one thread per
 * connection running a poll loop over its two sockets and an eventfd that
 * commands write to, so a command is seen before the loop forwards another
 * byte. Each direction (a flow) reads into its own buffer and releases bytes
 * frame by frame: a frame's header is parsed before its first byte leaves,
 * which is where its faults (cut, corrupt, delay) are decided.
 *
 * Locking: p->lock guards the rules, every connection's settings (stall,
 * partition, delay, drain), its counters and the connection table. A flow's
 * buffer and parser belong to its connection's thread alone. Waiters sleep on
 * p->cond, broadcast whenever a counter moves.
 */
#include "fault_proxy.h"

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "crc32c.h"
#include "wire.h"

#define FLOW_BUF (256u * 1024u)
#define OP_SLOTS 16            /* ops 1..15 counted one by one; slot 0: all */
#define HDR SPILL_WIRE_HDR_SIZE

enum rule_kind { RULE_CUT, RULE_CORRUPT, RULE_FORGE };

struct rule {
	int conn;                  /* connection number or FAULT_ALL */
	int dir;                   /* flow index: 0 client->server, 1 back */
	uint16_t op;               /* FAULT_ANY_OP or an op without REPLY */
	unsigned nth;              /* 1-based; 0 (corrupt only): every frame */
	enum rule_kind kind;
	size_t arg;                /* cut: bytes kept; corrupt: offset; forge: status */
	int keep;                  /* forge: keep the payload */
	int spent;                 /* forge with nth 0: fired once, never again */
	enum fault_close how;
	struct rule *next;
};

/* One direction of a connection; owned by the connection's thread. */
struct flow {
	int src, dst;              /* indexes into conn->fd */
	uint8_t *buf;
	size_t off, len;           /* bytes [off, len) wait to be forwarded */
	int framed;                /* still following frames */
	int in_frame;              /* a header was parsed: frame_* are valid */
	size_t frame_len, frame_off;
	long cut_at, corrupt_at;   /* this frame's faults, -1 for none */
	long trim_at;              /* forged: forward this much, drop the rest */
	enum fault_close cut_how;
	uint64_t release_ns;       /* held until then (delay) */
	int skip;                  /* drop the rest of this frame (after a heal) */
	int drop_counted;          /* FAULT_EV_DROP counted for this frame */
	int eof;                   /* src closed or failed */
	int blocked;               /* dst would block: wait for POLLOUT */
};

struct fault_conn {
	struct fault_proxy *p;
	int index;
	int fd[2];                 /* 0: client side, 1: server side */
	int wake;                  /* eventfd: a command changed something */
	pthread_t thread;
	int has_thread;
	struct flow flow[2];
	/* Under p->lock. */
	int stalled[2];
	int partitioned;
	int dead;                  /* healed with FAULT_HEAL_DEAD: drop forever */
	int resync;                /* healed: flows drop up to the next boundary */
	int draining;              /* cut with FIN: discard until both sides close */
	unsigned delay_us[2];
	long events[FAULT_EV_COUNT];
	long frames[2][OP_SLOTS];
};

struct fault_proxy {
	int listen_fd;
	int wake;                  /* eventfd: stop the acceptor */
	int upstream_port, port;
	char url[64];
	pthread_t acceptor;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	/* Under lock. */
	int quit;
	struct fault_conn **conns;
	int nconns, cap;
	struct rule *rules;
	/* FAULT_ALL settings, given to connections accepted from now on. */
	int all_stalled[2];
	int all_partitioned;
	unsigned all_delay_us[2];
};

/* The settings a connection's loop acts on, copied under the lock. */
struct conn_state {
	int quit, stalled[2], partitioned, draining;
};

static uint64_t now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

static void wake_fd(int fd)
{
	uint64_t one = 1;
	if (write(fd, &one, sizeof(one)) < 0) {
		/* Only EAGAIN at a counter near 2^64: already awake. */
	}
}

static void drain_wake(int fd)
{
	uint64_t v;
	if (read(fd, &v, sizeof(v)) < 0) {
		/* EAGAIN: nothing pending. */
	}
}

static uint16_t le16_at(const uint8_t *b)
{
	return (uint16_t)(b[0] | b[1] << 8);
}

static uint32_t le32_at(const uint8_t *b)
{
	return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

/* --- counters (p->lock held) -------------------------------------------- */

static void event_locked(struct fault_conn *c, enum fault_event ev)
{
	c->events[ev]++;
	pthread_cond_broadcast(&c->p->cond);
}

static void event(struct fault_conn *c, enum fault_event ev)
{
	pthread_mutex_lock(&c->p->lock);
	event_locked(c, ev);
	pthread_mutex_unlock(&c->p->lock);
}

static void snapshot(struct fault_conn *c, struct conn_state *st)
{
	pthread_mutex_lock(&c->p->lock);
	st->quit = c->p->quit;
	st->stalled[0] = c->stalled[0];
	st->stalled[1] = c->stalled[1];
	st->partitioned = c->partitioned;
	st->draining = c->draining;
	if (c->resync) {
		/* A heal: what is left of a frame dropped in part is dropped whole. */
		for (int d = 0; d < 2; d++)
			c->flow[d].skip = c->flow[d].in_frame;
		c->resync = 0;
	}
	pthread_mutex_unlock(&c->p->lock);
}

/* CRC32C of a frame whose header h (crc field zero) is followed by len
 * zero bytes, without the initial and final inversion: by linearity, the
 * checksum of a frame changes by exactly this when its header changes by h
 * and its payload does not. */
static uint32_t crc_of_change(const struct spill_wire_hdr *h, size_t len)
{
	static const uint8_t zeros[SPILL_PAGE_SIZE];
	uint32_t s = crc32c_raw(0, h, sizeof(*h));
	for (; len >= SPILL_PAGE_SIZE; len -= SPILL_PAGE_SIZE)
		s = crc32c_shift_page(s);
	return crc32c_raw(s, zeros, len);
}

/* Rewrite the reply header at h (still in the buffer, not yet sent) as
 * fault_forge describes; the frame's parsed length stays, so the payload
 * dropped is still consumed from the stream. */
static void forge_header(struct flow *f, uint8_t *h, uint16_t status, int keep)
{
	struct spill_wire_hdr w;
	memcpy(&w, h, sizeof(w));
	if (keep) {
		struct spill_wire_hdr delta = { 0 };
		delta.status = w.status ^ htole16(status);
		w.status = htole16(status);
		w.crc ^= htole32(crc_of_change(&delta, le32toh(w.payload_len)));
	} else {
		w.status = htole16(status);
		w.flags = 0;
		w.payload_len = 0;
		w.crc = 0;
		w.crc = htole32(crc32c(0, &w, sizeof(w)));
		f->trim_at = HDR;
	}
	memcpy(h, &w, sizeof(w));
}

/*
 * A frame's header (h) is in: count it and decide its faults. discard: it
 * is being dropped (partition), so no rule fires on it.
 */
static void frame_begin(struct fault_conn *c, int d, uint8_t *h, int discard)
{
	struct flow *f = &c->flow[d];
	struct fault_proxy *p = c->p;
	uint16_t op = le16_at(h + offsetof(struct spill_wire_hdr, op));
	uint16_t base = op & (uint16_t)~SPILL_OP_REPLY;
	int forged = 0;
	f->cut_at = -1;
	f->corrupt_at = -1;
	f->trim_at = -1;
	f->drop_counted = 0;
	pthread_mutex_lock(&p->lock);
	c->frames[d][0]++;
	if (base < OP_SLOTS)
		c->frames[d][base]++;
	f->release_ns = c->delay_us[d] ? now_ns() + c->delay_us[d] * 1000ull : 0;
	for (struct rule *r = p->rules; r && !discard; r = r->next) {
		if ((r->conn != FAULT_ALL && r->conn != c->index) || r->dir != d)
			continue;
		long seen;
		if (r->op == FAULT_ANY_OP)
			seen = c->frames[d][0];
		else if (r->op == base && base < OP_SLOTS)
			seen = c->frames[d][base];
		else
			continue;
		if (r->nth && (long)r->nth != seen)
			continue;
		if (r->kind == RULE_CUT && f->cut_at < 0) {
			size_t keep = r->arg == FAULT_KEEP_HALF ? HDR + (f->frame_len - HDR) / 2
								: r->arg;
			f->cut_at = (long)(keep < f->frame_len ? keep : f->frame_len);
			f->cut_how = r->how;
		} else if (r->kind == RULE_CORRUPT && r->arg < f->frame_len) {
			f->corrupt_at = (long)r->arg;
		} else if (r->kind == RULE_FORGE && !r->spent && !forged && (op & SPILL_OP_REPLY)) {
			r->spent = !r->nth;
			forged = 1;
			forge_header(f, h, (uint16_t)r->arg, r->keep);
			event_locked(c, FAULT_EV_FORGE);
		}
	}
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
}

/* --- closing ------------------------------------------------------------ */

static void close_fd(int *fd, int rst)
{
	if (*fd < 0)
		return;
	if (rst) {
		struct linger l = { .l_onoff = 1, .l_linger = 0 };
		setsockopt(*fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
	}
	close(*fd);
	*fd = -1;
}

static void conn_close(struct fault_conn *c, int rst)
{
	close_fd(&c->fd[0], rst);
	close_fd(&c->fd[1], rst);
	event(c, FAULT_EV_CLOSED);
}

/* The cut fires: RST closes now; FIN shuts both down and drains until both
 * sides have closed too (closing with unread bytes would send RST). */
static void conn_cut(struct fault_conn *c, enum fault_close how)
{
	event(c, FAULT_EV_CUT);
	if (how == FAULT_RST) {
		conn_close(c, 1);
		return;
	}
	shutdown(c->fd[0], SHUT_WR);
	shutdown(c->fd[1], SHUT_WR);
	pthread_mutex_lock(&c->p->lock);
	c->draining = 1;
	pthread_mutex_unlock(&c->p->lock);
	for (int d = 0; d < 2; d++)
		c->flow[d].off = c->flow[d].len = 0;
}

/* --- forwarding ---------------------------------------------------------- */

/* Take in what the sender has (the buffer made room first); note its end. */
static void flow_read(struct fault_conn *c, struct flow *f)
{
	if (f->off == f->len) {
		f->off = f->len = 0;
	} else if (f->off && FLOW_BUF - f->len < HDR + 64 * 1024) {
		memmove(f->buf, f->buf + f->off, f->len - f->off);
		f->len -= f->off;
		f->off = 0;
	}
	if (f->len == FLOW_BUF)
		return;
	ssize_t n = recv(c->fd[f->src], f->buf + f->len, FLOW_BUF - f->len, MSG_DONTWAIT);
	if (n > 0) {
		f->len += (size_t)n;
	} else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
		f->eof = 1;
		event(c, FAULT_EV_EOF);
	}
}

enum pump_result {
	PUMP_ON,                   /* forwarding goes on */
	PUMP_CUT,                  /* cut with FIN: both sides drain now */
	PUMP_CLOSED,               /* both sockets closed: the thread ends */
};

/* Did this frame reach its cut point? Then cut. */
static enum pump_result flow_cut_due(struct fault_conn *c, struct flow *f)
{
	if (!f->in_frame || f->cut_at < 0 || (size_t)f->cut_at != f->frame_off)
		return PUMP_ON;
	enum fault_close how = f->cut_how;
	conn_cut(c, how);
	return how == FAULT_RST ? PUMP_CLOSED : PUMP_CUT;
}

/*
 * Release what the buffer holds, frame by frame. discard: drop instead of
 * sending (partition). *wait_ns gets how long until a delayed frame is due
 * (unchanged if none is).
 */
static enum pump_result flow_pump(struct fault_conn *c, int d, int discard, uint64_t *wait_ns)
{
	struct flow *f = &c->flow[d];
	for (;;) {
		size_t avail = f->len - f->off;
		if (f->framed && !f->in_frame && avail < HDR && f->eof)
			f->framed = 0; /* the sender left a stub: pass it on as it is */
		if (f->framed && !f->in_frame) {
			if (avail < HDR)
				return PUMP_ON;
			const uint8_t *h = f->buf + f->off;
			uint32_t plen = le32_at(h + offsetof(struct spill_wire_hdr, payload_len));
			if (le32_at(h) != SPILL_WIRE_MAGIC || plen > SPILL_MAX_PAYLOAD) {
				f->framed = 0; /* plain bytes from here on */
			} else {
				f->in_frame = 1;
				f->frame_off = 0;
				f->frame_len = HDR + plen;
				f->skip = 0;
				frame_begin(c, d, f->buf + f->off, discard);
			}
		}
		if (f->in_frame && f->trim_at >= 0 && f->frame_off >= (size_t)f->trim_at)
			f->skip = 1; /* a forged reply's payload: dropped */
		int drop = discard || f->skip;
		if (!drop && f->in_frame && f->release_ns) {
			uint64_t now = now_ns();
			if (now < f->release_ns) {
				uint64_t left = f->release_ns - now;
				if (left < *wait_ns)
					*wait_ns = left;
				return PUMP_ON;
			}
			f->release_ns = 0;
		}
		enum pump_result cut = drop ? PUMP_ON : flow_cut_due(c, f);
		if (cut != PUMP_ON)
			return cut;
		size_t n = avail;
		if (f->in_frame && n > f->frame_len - f->frame_off)
			n = f->frame_len - f->frame_off;
		if (!drop && f->in_frame && f->cut_at >= 0 && n > (size_t)f->cut_at - f->frame_off)
			n = (size_t)f->cut_at - f->frame_off;
		if (!drop && f->in_frame && f->trim_at >= 0 && n > (size_t)f->trim_at - f->frame_off)
			n = (size_t)f->trim_at - f->frame_off;
		if (n == 0)
			return PUMP_ON;
		ssize_t w = (ssize_t)n;
		if (drop) {
			if (discard && f->in_frame && !f->drop_counted) {
				f->drop_counted = 1;
				event(c, FAULT_EV_DROP);
			}
		} else {
			if (f->in_frame && f->corrupt_at >= (long)f->frame_off &&
			    (size_t)f->corrupt_at < f->frame_off + n) {
				f->buf[f->off + (size_t)f->corrupt_at - f->frame_off] ^= 0xff;
				f->corrupt_at = -1;
				event(c, FAULT_EV_CORRUPT);
			}
			w = send(c->fd[f->dst], f->buf + f->off, n, MSG_DONTWAIT | MSG_NOSIGNAL);
			if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
				f->blocked = 1;
				return PUMP_ON;
			}
			if (w < 0) {
				event(c, FAULT_EV_EOF);
				conn_close(c, 0);
				return PUMP_CLOSED;
			}
			f->blocked = 0;
		}
		f->off += (size_t)w;
		if (f->in_frame) {
			f->frame_off += (size_t)w;
			cut = drop ? PUMP_ON : flow_cut_due(c, f);
			if (cut != PUMP_ON)
				return cut;
			if (f->frame_off == f->frame_len)
				f->in_frame = 0;
		}
	}
}

static short want_events(const struct fault_conn *c, const struct conn_state *st, int fdi)
{
	short ev = 0;
	for (int d = 0; d < 2; d++) {
		const struct flow *f = &c->flow[d];
		int quiet = st->partitioned || st->draining;
		if (f->src == fdi && !f->eof &&
		    (quiet || (!st->stalled[d] && f->len - f->off < FLOW_BUF)))
			ev |= POLLIN;
		if (f->dst == fdi && !quiet && !st->stalled[d] && f->blocked)
			ev |= POLLOUT;
	}
	return ev;
}

static void *conn_main(void *arg)
{
	struct fault_conn *c = arg;
	struct conn_state st;
	for (;;) {
		snapshot(c, &st);
		if (st.quit)
			break;
		uint64_t wait_ns = UINT64_MAX;
		/* Delayed frames due: their release time bounds the poll. */
		for (int d = 0; d < 2; d++) {
			struct flow *f = &c->flow[d];
			if (!st.partitioned && !st.draining && !st.stalled[d] && f->in_frame &&
			    f->release_ns) {
				uint64_t now = now_ns(), left = f->release_ns > now ? f->release_ns - now : 0;
				if (left < wait_ns)
					wait_ns = left;
			}
		}
		struct pollfd pf[3] = {
			{ .fd = c->fd[0], .events = want_events(c, &st, 0) },
			{ .fd = c->fd[1], .events = want_events(c, &st, 1) },
			{ .fd = c->wake, .events = POLLIN },
		};
		/* A socket we want nothing from is left out: a closed or reset
		 * one would report POLLHUP or POLLERR, asked or not, and spin. */
		for (int i = 0; i < 2; i++)
			if (!pf[i].events)
				pf[i].fd = -1;
		int timeout = wait_ns == UINT64_MAX ? -1 : (int)(wait_ns / 1000000u) + 1;
		if (poll(pf, 3, timeout) < 0 && errno != EINTR)
			break;
		if (pf[2].revents & POLLIN)
			drain_wake(c->wake);
		/* Act on the settings as they are now, not as before the wait. */
		snapshot(c, &st);
		if (st.quit)
			break;
		int gone = 0;
		for (int d = 0; d < 2 && gone == PUMP_ON; d++) {
			struct flow *f = &c->flow[d];
			int quiet = st.partitioned || st.draining;
			if ((pf[f->src].events & POLLIN) && (quiet || !st.stalled[d]) &&
			    (pf[f->src].revents & (POLLIN | POLLHUP | POLLERR)))
				flow_read(c, f);
			if (st.draining) {
				f->off = f->len = 0;
				continue;
			}
			if (st.partitioned || !st.stalled[d])
				gone = flow_pump(c, d, st.partitioned, &wait_ns);
		}
		if (gone == PUMP_CLOSED)
			break;
		if (gone == PUMP_CUT)
			continue; /* draining from the next round on */
		/* A FIN-cut connection closes once both peers have closed too. */
		if (st.draining && c->flow[0].eof && c->flow[1].eof) {
			conn_close(c, 0);
			break;
		}
		/* A side closed and everything it sent has been passed on. */
		if (!st.partitioned && !st.draining) {
			for (int d = 0; d < 2; d++) {
				struct flow *f = &c->flow[d];
				if (f->eof && !st.stalled[d] && f->off == f->len) {
					conn_close(c, 0);
					gone = 1;
					break;
				}
			}
			if (gone)
				break;
		}
	}
	for (int d = 0; d < 2; d++) {
		free(c->flow[d].buf);
		c->flow[d].buf = NULL;
	}
	return NULL;
}

/* --- accepting ------------------------------------------------------------ */

static int tcp_socket_to(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&a, sizeof(a))) {
		int e = -errno;
		close(fd);
		return e;
	}
	return fd;
}

static void tune(int fd)
{
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

static int table_add(struct fault_proxy *p, struct fault_conn *c)
{
	if (p->nconns == p->cap) {
		int cap = p->cap ? p->cap * 2 : 16;
		struct fault_conn **t = realloc(p->conns, (size_t)cap * sizeof(*t));
		if (!t)
			return -ENOMEM;
		p->conns = t;
		p->cap = cap;
	}
	c->index = p->nconns;
	p->conns[p->nconns++] = c;
	return 0;
}

static void conn_accept(struct fault_proxy *p, int cfd)
{
	struct fault_conn *c = calloc(1, sizeof(*c));
	if (!c) {
		close(cfd);
		return;
	}
	c->p = p;
	c->fd[0] = cfd;
	c->fd[1] = tcp_socket_to(p->upstream_port);
	c->wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	for (int d = 0; d < 2; d++) {
		c->flow[d].src = d;
		c->flow[d].dst = !d;
		c->flow[d].framed = 1;
		c->flow[d].buf = malloc(FLOW_BUF);
	}
	int ok = c->fd[1] >= 0 && c->wake >= 0 && c->flow[0].buf && c->flow[1].buf;
	if (c->fd[1] < 0)
		c->fd[1] = -1;
	tune(cfd);
	if (ok)
		tune(c->fd[1]);

	pthread_mutex_lock(&p->lock);
	if (table_add(p, c)) {
		pthread_mutex_unlock(&p->lock);
		close_fd(&c->fd[0], 0);
		close_fd(&c->fd[1], 0);
		if (c->wake >= 0)
			close(c->wake);
		free(c->flow[0].buf);
		free(c->flow[1].buf);
		free(c);
		return;
	}
	for (int d = 0; d < 2; d++) {
		c->stalled[d] = p->all_stalled[d];
		c->delay_us[d] = p->all_delay_us[d];
	}
	c->partitioned = p->all_partitioned;
	event_locked(c, FAULT_EV_ACCEPT);
	if (ok) {
		/* Started under the lock: its first step waits for the settings. */
		pthread_attr_t a;
		pthread_attr_init(&a);
		pthread_attr_setstacksize(&a, 256 * 1024);
		c->has_thread = pthread_create(&c->thread, &a, conn_main, c) == 0;
		pthread_attr_destroy(&a);
	}
	int has_thread = c->has_thread;
	pthread_mutex_unlock(&p->lock);
	if (!has_thread) {
		/* No upstream (server gone) or no resources: the client sees it closed. */
		event(c, FAULT_EV_EOF);
		conn_close(c, 0);
	}
}

static void *accept_main(void *arg)
{
	struct fault_proxy *p = arg;
	for (;;) {
		struct pollfd pf[2] = { { .fd = p->listen_fd, .events = POLLIN },
					{ .fd = p->wake, .events = POLLIN } };
		if (poll(pf, 2, -1) < 0 && errno != EINTR)
			break;
		if (pf[1].revents & POLLIN)
			break;
		if (pf[0].revents & POLLIN) {
			int cfd = accept4(p->listen_fd, NULL, NULL, SOCK_CLOEXEC);
			if (cfd >= 0)
				conn_accept(p, cfd);
		}
	}
	return NULL;
}

int fault_proxy_start(struct fault_proxy **out, int upstream_port)
{
	struct fault_proxy *p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->upstream_port = upstream_port;
	p->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t alen = sizeof(a);
	int rc = 0;
	if (p->listen_fd < 0 || bind(p->listen_fd, (struct sockaddr *)&a, sizeof(a)) ||
	    listen(p->listen_fd, 128) ||
	    getsockname(p->listen_fd, (struct sockaddr *)&a, &alen))
		rc = -errno;
	p->wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (!rc && p->wake < 0)
		rc = -errno;
	if (rc) {
		if (p->listen_fd >= 0)
			close(p->listen_fd);
		if (p->wake >= 0)
			close(p->wake);
		free(p);
		return rc;
	}
	p->port = ntohs(a.sin_port);
	snprintf(p->url, sizeof(p->url), "tcp://127.0.0.1:%d", p->port);
	pthread_mutex_init(&p->lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&p->cond, &ca);
	pthread_condattr_destroy(&ca);
	rc = -pthread_create(&p->acceptor, NULL, accept_main, p);
	if (rc) {
		close(p->listen_fd);
		close(p->wake);
		pthread_cond_destroy(&p->cond);
		pthread_mutex_destroy(&p->lock);
		free(p);
		return rc;
	}
	*out = p;
	return 0;
}

void fault_proxy_stop(struct fault_proxy *p)
{
	if (!p)
		return;
	wake_fd(p->wake);
	pthread_join(p->acceptor, NULL);
	pthread_mutex_lock(&p->lock);
	p->quit = 1;
	for (int i = 0; i < p->nconns; i++)
		if (p->conns[i]->has_thread)
			wake_fd(p->conns[i]->wake);
	pthread_mutex_unlock(&p->lock);
	/* The acceptor is gone: the table no longer changes. */
	for (int i = 0; i < p->nconns; i++) {
		struct fault_conn *c = p->conns[i];
		if (c->has_thread)
			pthread_join(c->thread, NULL);
		close_fd(&c->fd[0], 0);
		close_fd(&c->fd[1], 0);
		if (c->wake >= 0)
			close(c->wake);
		free(c->flow[0].buf);
		free(c->flow[1].buf);
		free(c);
	}
	while (p->rules) {
		struct rule *r = p->rules;
		p->rules = r->next;
		free(r);
	}
	free(p->conns);
	close(p->listen_fd);
	close(p->wake);
	pthread_cond_destroy(&p->cond);
	pthread_mutex_destroy(&p->lock);
	free(p);
}

int fault_proxy_port(const struct fault_proxy *p)
{
	return p->port;
}

const char *fault_proxy_url(const struct fault_proxy *p)
{
	return p->url;
}

/* --- commands ------------------------------------------------------------- */

/*
 * Apply fn to connection conn, or to every connection and the defaults for
 * later ones (FAULT_ALL), under the lock, then wake the connections touched.
 * -ENOENT for a connection not accepted yet.
 */
typedef void (*conn_fn)(struct fault_conn *c, const void *arg);

static int for_conns(struct fault_proxy *p, int conn, conn_fn fn, const void *arg)
{
	pthread_mutex_lock(&p->lock);
	if (conn != FAULT_ALL && (conn < 0 || conn >= p->nconns)) {
		pthread_mutex_unlock(&p->lock);
		return -ENOENT;
	}
	int from = conn == FAULT_ALL ? 0 : conn;
	int to = conn == FAULT_ALL ? p->nconns : conn + 1;
	for (int i = from; i < to; i++) {
		fn(p->conns[i], arg);
		if (p->conns[i]->has_thread)
			wake_fd(p->conns[i]->wake);
	}
	pthread_mutex_unlock(&p->lock);
	return 0;
}

static int dir_valid(enum fault_dir dir)
{
	return dir >= FAULT_C2S && dir <= FAULT_BOTH;
}

static int rule_add(struct fault_proxy *p, const struct rule *tmpl)
{
	if (tmpl->conn < FAULT_ALL)
		return -EINVAL;
	struct rule *r = malloc(sizeof(*r));
	if (!r)
		return -ENOMEM;
	*r = *tmpl;
	pthread_mutex_lock(&p->lock);
	r->next = p->rules;
	p->rules = r;
	pthread_mutex_unlock(&p->lock);
	return 0;
}

int fault_cut(struct fault_proxy *p, int conn, enum fault_dir dir, uint16_t op,
	      unsigned nth, size_t keep, enum fault_close how)
{
	if ((dir != FAULT_C2S && dir != FAULT_S2C) || nth == 0)
		return -EINVAL;
	struct rule r = { .conn = conn, .dir = dir == FAULT_S2C, .op = op, .nth = nth,
			  .kind = RULE_CUT, .arg = keep, .how = how };
	return rule_add(p, &r);
}

int fault_corrupt(struct fault_proxy *p, int conn, enum fault_dir dir, uint16_t op,
		  unsigned nth, size_t offset)
{
	if (dir != FAULT_C2S && dir != FAULT_S2C)
		return -EINVAL;
	struct rule r = { .conn = conn, .dir = dir == FAULT_S2C, .op = op, .nth = nth,
			  .kind = RULE_CORRUPT, .arg = offset };
	return rule_add(p, &r);
}

int fault_forge(struct fault_proxy *p, int conn, uint16_t op, unsigned nth, uint16_t status,
		int keep_payload)
{
	if (status >= SPILL_ST_MAX)
		return -EINVAL;
	struct rule r = { .conn = conn, .dir = 1, .op = op, .nth = nth, .kind = RULE_FORGE,
			  .arg = status, .keep = !!keep_payload };
	return rule_add(p, &r);
}

struct set_arg {
	enum fault_dir dir;
	int on;
	unsigned usec;
	enum fault_heal heal;
};

static void set_stall(struct fault_conn *c, const void *arg)
{
	const struct set_arg *a = arg;
	for (int d = 0; d < 2; d++)
		if (a->dir & (1 << d))
			c->stalled[d] = a->on;
}

static int stall_set(struct fault_proxy *p, int conn, enum fault_dir dir, int on)
{
	if (!dir_valid(dir))
		return -EINVAL;
	struct set_arg a = { .dir = dir, .on = on };
	int rc = for_conns(p, conn, set_stall, &a);
	if (!rc && conn == FAULT_ALL) {
		pthread_mutex_lock(&p->lock);
		for (int d = 0; d < 2; d++)
			if (dir & (1 << d))
				p->all_stalled[d] = on;
		pthread_mutex_unlock(&p->lock);
	}
	return rc;
}

int fault_stall(struct fault_proxy *p, int conn, enum fault_dir dir)
{
	return stall_set(p, conn, dir, 1);
}

int fault_resume(struct fault_proxy *p, int conn, enum fault_dir dir)
{
	return stall_set(p, conn, dir, 0);
}

static void set_partition(struct fault_conn *c, const void *arg)
{
	const struct set_arg *a = arg;
	if (a->on) {
		c->partitioned = 1;
	} else if (a->heal == FAULT_HEAL_DEAD) {
		c->dead = c->dead || c->partitioned;
	} else if (c->partitioned && !c->dead) {
		c->partitioned = 0;
		c->resync = 1;
	}
}

static int partition_set(struct fault_proxy *p, int conn, int on, enum fault_heal heal)
{
	struct set_arg a = { .on = on, .heal = heal };
	int rc = for_conns(p, conn, set_partition, &a);
	if (!rc && conn == FAULT_ALL) {
		pthread_mutex_lock(&p->lock);
		p->all_partitioned = on;
		pthread_mutex_unlock(&p->lock);
	}
	return rc;
}

int fault_partition(struct fault_proxy *p, int conn)
{
	return partition_set(p, conn, 1, FAULT_HEAL_RESUME);
}

int fault_heal(struct fault_proxy *p, int conn, enum fault_heal how)
{
	return partition_set(p, conn, 0, how);
}

static void set_delay(struct fault_conn *c, const void *arg)
{
	const struct set_arg *a = arg;
	for (int d = 0; d < 2; d++)
		if (a->dir & (1 << d))
			c->delay_us[d] = a->usec;
}

int fault_delay(struct fault_proxy *p, int conn, enum fault_dir dir, unsigned usec)
{
	if (!dir_valid(dir))
		return -EINVAL;
	struct set_arg a = { .dir = dir, .usec = usec };
	int rc = for_conns(p, conn, set_delay, &a);
	if (!rc && conn == FAULT_ALL) {
		pthread_mutex_lock(&p->lock);
		for (int d = 0; d < 2; d++)
			if (dir & (1 << d))
				p->all_delay_us[d] = usec;
		pthread_mutex_unlock(&p->lock);
	}
	return rc;
}

int fault_clear(struct fault_proxy *p, int conn)
{
	pthread_mutex_lock(&p->lock);
	for (struct rule **rp = &p->rules; *rp;) {
		struct rule *r = *rp;
		if (conn == FAULT_ALL || r->conn == conn) {
			*rp = r->next;
			free(r);
		} else {
			rp = &r->next;
		}
	}
	pthread_mutex_unlock(&p->lock);
	int rc = fault_resume(p, conn, FAULT_BOTH);
	if (!rc)
		rc = fault_heal(p, conn, FAULT_HEAL_RESUME);
	if (!rc)
		rc = fault_delay(p, conn, FAULT_BOTH, 0);
	return rc;
}

/* --- events --------------------------------------------------------------- */

static long count_locked(struct fault_proxy *p, enum fault_event ev, int conn)
{
	long n = 0;
	for (int i = 0; i < p->nconns; i++)
		if (conn == FAULT_ALL || conn == i)
			n += p->conns[i]->events[ev];
	return n;
}

static long frames_locked(struct fault_proxy *p, int conn, enum fault_dir dir, uint16_t op)
{
	uint16_t base = op & (uint16_t)~SPILL_OP_REPLY;
	if (base >= OP_SLOTS)
		return 0;
	long n = 0;
	for (int i = 0; i < p->nconns; i++)
		if (conn == FAULT_ALL || conn == i)
			for (int d = 0; d < 2; d++)
				if (dir & (1 << d))
					n += p->conns[i]->frames[d][base];
	return n;
}

long fault_count(struct fault_proxy *p, enum fault_event ev, int conn)
{
	if (ev < 0 || ev >= FAULT_EV_COUNT)
		return -EINVAL;
	pthread_mutex_lock(&p->lock);
	long n = count_locked(p, ev, conn);
	pthread_mutex_unlock(&p->lock);
	return n;
}

long fault_frames(struct fault_proxy *p, int conn, enum fault_dir dir, uint16_t op)
{
	pthread_mutex_lock(&p->lock);
	long n = frames_locked(p, conn, dir, op);
	pthread_mutex_unlock(&p->lock);
	return n;
}

int fault_conns(struct fault_proxy *p)
{
	pthread_mutex_lock(&p->lock);
	int n = p->nconns;
	pthread_mutex_unlock(&p->lock);
	return n;
}

static void deadline_after(struct timespec *t, int timeout_ms)
{
	clock_gettime(CLOCK_MONOTONIC, t);
	t->tv_sec += timeout_ms / 1000;
	t->tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (t->tv_nsec >= 1000000000L) {
		t->tv_sec++;
		t->tv_nsec -= 1000000000L;
	}
}

/* What a waiter watches: an event count or a frame count. */
struct wait_for {
	int is_frames;
	enum fault_event ev;
	int conn;
	enum fault_dir dir;
	uint16_t op;
};

static long wait_value_locked(struct fault_proxy *p, const struct wait_for *w)
{
	return w->is_frames ? frames_locked(p, w->conn, w->dir, w->op)
			    : count_locked(p, w->ev, w->conn);
}

/* Sleep on p->cond until the watched count reaches min; 0 or -ETIMEDOUT. */
static int wait_until(struct fault_proxy *p, const struct wait_for *w, long min, int timeout_ms)
{
	struct timespec dl;
	deadline_after(&dl, timeout_ms);
	int rc = 0;
	pthread_mutex_lock(&p->lock);
	while (wait_value_locked(p, w) < min) {
		if (pthread_cond_timedwait(&p->cond, &p->lock, &dl) == ETIMEDOUT) {
			rc = wait_value_locked(p, w) >= min ? 0 : -ETIMEDOUT;
			break;
		}
	}
	pthread_mutex_unlock(&p->lock);
	return rc;
}

int fault_wait_count(struct fault_proxy *p, enum fault_event ev, int conn, long min,
		     int timeout_ms)
{
	if (ev < 0 || ev >= FAULT_EV_COUNT)
		return -EINVAL;
	struct wait_for w = { .ev = ev, .conn = conn };
	return wait_until(p, &w, min, timeout_ms);
}

int fault_wait(struct fault_proxy *p, enum fault_event ev, int conn, int timeout_ms)
{
	return fault_wait_count(p, ev, conn, 1, timeout_ms);
}

int fault_wait_frames(struct fault_proxy *p, int conn, enum fault_dir dir, uint16_t op,
		      long min, int timeout_ms)
{
	struct wait_for w = { .is_frames = 1, .conn = conn, .dir = dir, .op = op };
	return wait_until(p, &w, min, timeout_ms);
}
