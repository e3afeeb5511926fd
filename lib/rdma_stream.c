/* SPDX-License-Identifier: MIT */
#include "rdma_stream.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include <infiniband/verbs.h>
#include <rdma/rdma_cma.h>

#include "rdma_check.h"

#define BOUNCE_UNIT   4096u
#define POLL_BATCH    16
#define WAIT_SLICE_MS 20

enum wr_kind { WR_SEND = 1, WR_RECV = 2, WR_ONESIDED = 3 };

static uint64_t wr_id(enum wr_kind k, unsigned idx)
{
	return ((uint64_t)k << 56) | idx;
}

struct onesided {
	uint64_t cookie;
	void *buf;
	size_t len;
	unsigned unit, units;   /* bounce range */
	int write;
};

struct rdma_stream {
	struct rdma_cm_id *id;
	struct ibv_qp *qp;
	int own_qp;         /* created here (passive_locked), not by rdma_cm */
	struct rdma_event_channel *ech;
	struct ibv_comp_channel *cch;
	struct ibv_cq *cq;
	int epfd;
	int err;            /* -errno once broken */
	int peer_gone;      /* disconnected: end of stream after what is buffered */
	int disconnect_sent;
	int connected;
	uint64_t happened;  /* completions and events seen, for wait's spin */

	uint8_t *slots;     /* RDMA_STREAM_SLOTS send buffers, then as many receive */
	struct ibv_mr *slots_mr;
	unsigned send_free[RDMA_STREAM_SLOTS];
	unsigned nsend_free;
	unsigned rx_idx[RDMA_STREAM_SLOTS];
	uint32_t rx_len[RDMA_STREAM_SLOTS];
	unsigned rx_head, rx_count;
	size_t rx_off;

	uint8_t *bounce;
	struct ibv_mr *bounce_mr;
	unsigned bounce_units;
	uint8_t *bounce_used;   /* one byte per unit */
	struct onesided *ops;
	unsigned *ops_free, nops_free, ops_max;
	uint64_t *done_cookie;
	int *done_status;
	unsigned done_head, done_count;
};

static uint8_t *send_slot(struct rdma_stream *s, unsigned i)
{
	return s->slots + (size_t)i * RDMA_STREAM_SLOT_BYTES;
}

static uint8_t *recv_slot(struct rdma_stream *s, unsigned i)
{
	return s->slots + (size_t)(RDMA_STREAM_SLOTS + i) * RDMA_STREAM_SLOT_BYTES;
}

static int set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);
	return fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) ? -errno : 0;
}

static int post_recv(struct rdma_stream *s, unsigned i)
{
	struct ibv_sge sge = { (uintptr_t)recv_slot(s, i), RDMA_STREAM_SLOT_BYTES,
			       s->slots_mr->lkey };
	struct ibv_recv_wr wr = { .wr_id = wr_id(WR_RECV, i), .sg_list = &sge, .num_sge = 1 }, *bad;
	return -ibv_post_recv(s->qp, &wr, &bad);
}

static void set_err(struct rdma_stream *s, int err)
{
	if (!s->err)
		s->err = err;
}

static int wc_errno(enum ibv_wc_status st)
{
	switch (st) {
	case IBV_WC_REM_ACCESS_ERR:
	case IBV_WC_LOC_PROT_ERR:
		return -EACCES;
	case IBV_WC_RETRY_EXC_ERR:
	case IBV_WC_RNR_RETRY_EXC_ERR:
		return -ETIMEDOUT;
	case IBV_WC_WR_FLUSH_ERR:
		return -ECONNRESET;
	case IBV_WC_REM_INV_REQ_ERR:
		return -EINVAL;
	default:
		return -EIO;
	}
}

static void bounce_release(struct rdma_stream *s, unsigned unit, unsigned units)
{
	memset(s->bounce_used + unit, 0, units);
}

/* First fit over the arena; -1 when no run of units is free. */
static int bounce_take(struct rdma_stream *s, unsigned units)
{
	unsigned run = 0;
	for (unsigned i = 0; i < s->bounce_units; i++) {
		run = s->bounce_used[i] ? 0 : run + 1;
		if (run == units) {
			unsigned start = i + 1 - units;
			memset(s->bounce_used + start, 1, units);
			return (int)start;
		}
	}
	return -1;
}

static void onesided_done(struct rdma_stream *s, unsigned idx, int status)
{
	struct onesided *op = &s->ops[idx];
	if (status == 0 && !op->write)
		memcpy(op->buf, s->bounce + (size_t)op->unit * BOUNCE_UNIT, op->len);
	bounce_release(s, op->unit, op->units);
	unsigned tail = (s->done_head + s->done_count) % s->ops_max;
	s->done_cookie[tail] = op->cookie;
	s->done_status[tail] = status;
	s->done_count++;
	s->ops_free[s->nops_free++] = idx;
}

static void handle_wc(struct rdma_stream *s, const struct ibv_wc *wc)
{
	unsigned idx = (unsigned)(wc->wr_id & 0xffffffffu);
	int status = wc->status == IBV_WC_SUCCESS ? 0 : wc_errno(wc->status);
	s->happened++;
	if (status)
		set_err(s, status);
	switch ((enum wr_kind)(wc->wr_id >> 56)) {
	case WR_SEND:
		s->send_free[s->nsend_free++] = idx;
		break;
	case WR_RECV:
		if (status == 0) {
			unsigned tail = (s->rx_head + s->rx_count) % RDMA_STREAM_SLOTS;
			s->rx_idx[tail] = idx;
			s->rx_len[tail] = wc->byte_len;
			s->rx_count++;
		}
		break;
	case WR_ONESIDED:
		onesided_done(s, idx, status);
		break;
	}
}

static void poll_cq(struct rdma_stream *s)
{
	struct ibv_wc wc[POLL_BATCH];
	int n;
	while ((n = ibv_poll_cq(s->cq, POLL_BATCH, wc)) > 0)
		for (int i = 0; i < n; i++)
			handle_wc(s, &wc[i]);
	if (n < 0)
		set_err(s, -EIO);
}

/* Move the QP to the error state once, so everything posted completes
 * (rdma_cm does that itself only for a QP it created). */
static void disconnect(struct rdma_stream *s)
{
	if (s->disconnect_sent)
		return;
	s->disconnect_sent = 1;
	if (s->own_qp) {
		struct ibv_qp_attr a = { .qp_state = IBV_QPS_ERR };
		ibv_modify_qp(s->qp, &a, IBV_QP_STATE);
	}
	rdma_disconnect(s->id);
}

static void handle_cm_event(struct rdma_stream *s, const struct rdma_cm_event *ev)
{
	s->happened++;
	switch (ev->event) {
	case RDMA_CM_EVENT_ESTABLISHED:
		s->connected = 1;
		break;
	case RDMA_CM_EVENT_REJECTED:
		set_err(s, -ECONNREFUSED);
		break;
	case RDMA_CM_EVENT_UNREACHABLE:
	case RDMA_CM_EVENT_CONNECT_ERROR:
		set_err(s, -EHOSTUNREACH);
		break;
	case RDMA_CM_EVENT_DISCONNECTED:
	case RDMA_CM_EVENT_TIMEWAIT_EXIT:
		s->peer_gone = 1;
		disconnect(s);
		break;
	case RDMA_CM_EVENT_DEVICE_REMOVAL:
		set_err(s, -ENODEV);
		disconnect(s);
		break;
	default:
		break;
	}
}

int rdma_stream_process(struct rdma_stream *s)
{
	struct ibv_cq *cq;
	void *ctx;
	unsigned events = 0;
	while (ibv_get_cq_event(s->cch, &cq, &ctx) == 0)
		events++;
	if (events) {
		ibv_ack_cq_events(s->cq, events);
		if (ibv_req_notify_cq(s->cq, 0))
			set_err(s, -EIO);
	}
	poll_cq(s);
	struct rdma_cm_event *ev;
	while (rdma_get_cm_event(s->ech, &ev) == 0) {
		handle_cm_event(s, ev);
		rdma_ack_cm_event(ev);
	}
	if (s->err)
		disconnect(s);
	return s->err;
}

static uint64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

int rdma_stream_wait(struct rdma_stream *s, int timeout_ms, int spin_us)
{
	uint64_t seen = s->happened;
	if (spin_us > 0) {
		/* The fault path waits here: a few microseconds of polling beat a
		 * wake-up through the completion channel by far. */
		uint64_t end = now_us() + (uint64_t)spin_us;
		do {
			poll_cq(s);
			if (s->happened != seen || s->err)
				return 1;
		} while (now_us() < end);
	}
	/* Sleep in slices and look at the CQ between them: a completion whose
	 * notification went missing costs one slice, not the whole timeout. */
	struct epoll_event ev;
	for (int left = timeout_ms; left > 0; left -= WAIT_SLICE_MS) {
		int n = epoll_wait(s->epfd, &ev, 1, left < WAIT_SLICE_MS ? left : WAIT_SLICE_MS);
		if (n != 0)
			return n > 0 ? 1 : errno == EINTR ? 1 : -errno;
		poll_cq(s);
		if (s->happened != seen || s->err)
			return 1;
	}
	return 0;
}

ssize_t rdma_stream_sendv(struct rdma_stream *s, const struct iovec *iov, int iovcnt)
{
	if (s->err)
		return s->err;
	if (s->peer_gone)
		return -EPIPE;
	if (!s->nsend_free)
		poll_cq(s);
	size_t taken = 0;
	int i = 0;
	size_t off = 0;
	while (i < iovcnt && s->nsend_free) {
		unsigned slot = s->send_free[--s->nsend_free];
		uint8_t *dst = send_slot(s, slot);
		size_t fill = 0;
		while (i < iovcnt && fill < RDMA_STREAM_SLOT_BYTES) {
			size_t n = iov[i].iov_len - off;
			if (n > RDMA_STREAM_SLOT_BYTES - fill)
				n = RDMA_STREAM_SLOT_BYTES - fill;
			memcpy(dst + fill, (const uint8_t *)iov[i].iov_base + off, n);
			fill += n;
			off += n;
			if (off == iov[i].iov_len) {
				i++;
				off = 0;
			}
		}
		if (!fill) {
			s->send_free[s->nsend_free++] = slot;
			break;
		}
		struct ibv_sge sge = { (uintptr_t)dst, (uint32_t)fill, s->slots_mr->lkey };
		struct ibv_send_wr wr = { .wr_id = wr_id(WR_SEND, slot), .sg_list = &sge,
					  .num_sge = 1, .opcode = IBV_WR_SEND,
					  .send_flags = IBV_SEND_SIGNALED },
				   *bad;
		int rc = ibv_post_send(s->qp, &wr, &bad);
		if (rc) {
			s->send_free[s->nsend_free++] = slot;
			set_err(s, -rc);
			return taken ? (ssize_t)taken : -rc;
		}
		taken += fill;
	}
	return taken ? (ssize_t)taken : -EAGAIN;
}

ssize_t rdma_stream_recv(struct rdma_stream *s, void *buf, size_t len)
{
	if (!s->rx_count)
		rdma_stream_process(s);
	size_t got = 0;
	while (got < len && s->rx_count) {
		unsigned slot = s->rx_idx[s->rx_head];
		size_t avail = s->rx_len[s->rx_head] - s->rx_off;
		size_t n = avail < len - got ? avail : len - got;
		memcpy((uint8_t *)buf + got, recv_slot(s, slot) + s->rx_off, n);
		got += n;
		s->rx_off += n;
		if (s->rx_off == s->rx_len[s->rx_head]) {
			s->rx_off = 0;
			s->rx_head = (s->rx_head + 1) % RDMA_STREAM_SLOTS;
			s->rx_count--;
			if (!s->err && !s->peer_gone) {
				int rc = post_recv(s, slot);
				if (rc)
					set_err(s, rc);
			}
		}
	}
	if (got)
		return (ssize_t)got;
	if (s->err && s->err != -ECONNRESET)
		return s->err;
	return s->peer_gone || s->err ? 0 : -EAGAIN;
}

int rdma_stream_can_send(const struct rdma_stream *s)
{
	return s->nsend_free > 0 && !s->err && !s->peer_gone;
}

int rdma_stream_has_input(const struct rdma_stream *s)
{
	return s->rx_count > 0 || s->peer_gone || s->err;
}

int rdma_stream_error(const struct rdma_stream *s)
{
	return s->err ? s->err : s->peer_gone ? -ECONNRESET : 0;
}

int rdma_stream_connected(const struct rdma_stream *s)
{
	return s->connected;
}

int rdma_stream_post_onesided(struct rdma_stream *s, int write, uint64_t raddr, uint32_t rkey,
			      void *buf, size_t len, uint64_t cookie)
{
	if (s->err)
		return s->err;
	if (s->peer_gone)
		return -ECONNRESET;
	unsigned units = (unsigned)((len + BOUNCE_UNIT - 1) / BOUNCE_UNIT);
	if (!units || units > s->bounce_units)
		return -EMSGSIZE;
	if (!s->nops_free)
		return -EAGAIN;
	int unit = bounce_take(s, units);
	if (unit < 0)
		return -EAGAIN;
	unsigned idx = s->ops_free[--s->nops_free];
	struct onesided *op = &s->ops[idx];
	*op = (struct onesided){ cookie, buf, len, (unsigned)unit, units, write };
	uint8_t *local = s->bounce + (size_t)unit * BOUNCE_UNIT;
	if (write)
		memcpy(local, buf, len);
	struct ibv_sge sge = { (uintptr_t)local, (uint32_t)len, s->bounce_mr->lkey };
	struct ibv_send_wr wr = {
		.wr_id = wr_id(WR_ONESIDED, idx), .sg_list = &sge, .num_sge = 1,
		.opcode = write ? IBV_WR_RDMA_WRITE : IBV_WR_RDMA_READ,
		.send_flags = IBV_SEND_SIGNALED,
		.wr.rdma = { .remote_addr = raddr, .rkey = rkey },
	}, *bad;
	int rc = ibv_post_send(s->qp, &wr, &bad);
	if (rc) {
		bounce_release(s, op->unit, op->units);
		s->ops_free[s->nops_free++] = idx;
		return -rc;
	}
	return 0;
}

int rdma_stream_reap_onesided(struct rdma_stream *s, uint64_t *cookie, int *status, int max)
{
	if (!s->done_count)
		rdma_stream_process(s);
	int n = 0;
	while (n < max && s->done_count) {
		cookie[n] = s->done_cookie[s->done_head];
		status[n++] = s->done_status[s->done_head];
		s->done_head = (s->done_head + 1) % s->ops_max;
		s->done_count--;
	}
	return n;
}

unsigned rdma_stream_onesided_done(const struct rdma_stream *s)
{
	return s->done_count;
}

struct rdma_cm_id *rdma_stream_id(struct rdma_stream *s)
{
	return s->id;
}

int rdma_stream_fd(struct rdma_stream *s)
{
	return s->epfd;
}

static int setup_onesided(struct rdma_stream *s, struct ibv_pd *pd,
			  const struct rdma_stream_cfg *cfg, char *why, size_t cap)
{
	s->ops_max = cfg->onesided_max ? cfg->onesided_max : 1;
	s->bounce_units = (unsigned)(cfg->bounce_bytes / BOUNCE_UNIT);
	s->ops = calloc(s->ops_max, sizeof(*s->ops));
	s->ops_free = calloc(s->ops_max, sizeof(*s->ops_free));
	s->done_cookie = calloc(s->ops_max, sizeof(*s->done_cookie));
	s->done_status = calloc(s->ops_max, sizeof(*s->done_status));
	s->bounce_used = calloc(s->bounce_units ? s->bounce_units : 1, 1);
	if (!s->ops || !s->ops_free || !s->done_cookie || !s->done_status || !s->bounce_used) {
		snprintf(why, cap, "out of memory");
		return -ENOMEM;
	}
	for (unsigned i = 0; i < s->ops_max; i++)
		s->ops_free[s->nops_free++] = s->ops_max - 1 - i;
	if (!s->bounce_units)
		return 0;
	if (posix_memalign((void **)&s->bounce, 4096, cfg->bounce_bytes)) {
		snprintf(why, cap, "out of memory");
		return -ENOMEM;
	}
	s->bounce_mr = ibv_reg_mr(pd, s->bounce, cfg->bounce_bytes, IBV_ACCESS_LOCAL_WRITE);
	if (!s->bounce_mr) {
		int err = errno;
		rdma_explain_reg_failure(err, cfg->bounce_bytes, why, cap);
		return -err;
	}
	return 0;
}

/*
 * Move the stream's own QP to state with the attributes rdma_cm computes for
 * this connection (as rdma_accept would for a QP of its own), remote access
 * forced off: the access flags are optional in every one of these
 * transitions, so they are always given, as 0.
 */
static int locked_qp_to(struct rdma_stream *s, enum ibv_qp_state state,
			const struct rdma_conn_param *cp)
{
	struct ibv_qp_attr a = { .qp_state = state };
	int mask;
	if (rdma_init_qp_attr(s->id, &a, &mask))
		return -errno;
	a.qp_access_flags = 0;
	mask |= IBV_QP_ACCESS_FLAGS;
	if (state == IBV_QPS_RTR && cp)
		a.max_dest_rd_atomic = cp->responder_resources;
	if (state == IBV_QPS_RTS && cp)
		a.max_rd_atomic = cp->initiator_depth;
	return -ibv_modify_qp(s->qp, &a, mask);
}

static int create_locked_qp(struct rdma_stream *s, struct ibv_pd *pd,
			    struct ibv_qp_init_attr *qa)
{
	s->qp = ibv_create_qp(pd, qa);
	if (!s->qp)
		return -errno;
	s->own_qp = 1;
	return locked_qp_to(s, IBV_QPS_INIT, NULL);
}

int rdma_stream_accept(struct rdma_stream *s, struct rdma_conn_param *cp)
{
	if (!s->own_qp)
		return -EINVAL;
	int rc = locked_qp_to(s, IBV_QPS_RTR, cp);
	if (!rc)
		rc = locked_qp_to(s, IBV_QPS_RTS, cp);
	if (rc)
		return rc;
	/* What the device holds, not what was asked: no remote access. */
	struct ibv_qp_attr a;
	struct ibv_qp_init_attr ia;
	if (ibv_query_qp(s->qp, &a, IBV_QP_ACCESS_FLAGS, &ia))
		return -errno;
	if (a.qp_access_flags & (IBV_ACCESS_REMOTE_READ | IBV_ACCESS_REMOTE_WRITE |
				 IBV_ACCESS_REMOTE_ATOMIC))
		return -EPERM;
	cp->qp_num = s->qp->qp_num;
	cp->srq = 0;
	return rdma_accept(s->id, cp) ? -errno : 0;
}

int rdma_stream_allow_remote(struct rdma_stream *s)
{
	/* RTS to RTS: the access flags are the one thing that changes. */
	struct ibv_qp_attr a = { .qp_access_flags = IBV_ACCESS_REMOTE_READ |
						    IBV_ACCESS_REMOTE_WRITE };
	return -ibv_modify_qp(s->qp, &a, IBV_QP_ACCESS_FLAGS);
}

int rdma_stream_create(struct rdma_cm_id *id, struct ibv_pd *pd,
		       const struct rdma_stream_cfg *cfg, struct rdma_stream **out,
		       char *why, size_t cap)
{
	struct rdma_stream *s = calloc(1, sizeof(*s));
	if (!s) {
		snprintf(why, cap, "out of memory");
		return -ENOMEM;
	}
	s->epfd = -1;
	int rc = -ENOMEM;
	struct rdma_event_channel *first = id->channel;
	s->ech = rdma_create_event_channel();
	if (!s->ech || set_nonblock(s->ech->fd) || rdma_migrate_id(id, s->ech)) {
		rc = -errno;
		snprintf(why, cap, "rdma event channel: %s", strerror(errno));
		if (s->ech)
			rdma_destroy_event_channel(s->ech);
		free(s);
		return rc;
	}
	s->id = id;
	struct ibv_context *ctx = id->verbs;
	s->cch = ibv_create_comp_channel(ctx);
	if (!s->cch) {
		rc = -errno;
		snprintf(why, cap, "completion channel: %s", strerror(errno));
		goto fail;
	}
	unsigned ops = cfg && cfg->bounce_bytes ? cfg->onesided_max : 0;
	int cqe = 2 * RDMA_STREAM_SLOTS + (int)ops + 8;
	s->cq = ibv_create_cq(ctx, cqe, s, s->cch, 0);
	if (!s->cq || ibv_req_notify_cq(s->cq, 0)) {
		rc = -errno;
		snprintf(why, cap, "completion queue of %d: %s", cqe, strerror(errno));
		goto fail;
	}
	struct ibv_qp_init_attr qa = {
		.send_cq = s->cq, .recv_cq = s->cq, .qp_type = IBV_QPT_RC, .sq_sig_all = 1,
		.cap = { .max_send_wr = RDMA_STREAM_SLOTS + ops + 1,
			 .max_recv_wr = RDMA_STREAM_SLOTS, .max_send_sge = 1, .max_recv_sge = 1 },
	};
	rc = cfg && cfg->passive_locked ? create_locked_qp(s, pd, &qa)
	     : rdma_create_qp(id, pd, &qa) ? -errno : 0;
	if (rc) {
		snprintf(why, cap, "queue pair: %s", strerror(-rc));
		goto fail;
	}
	if (!s->own_qp)
		s->qp = id->qp;
	size_t bytes = (size_t)2 * RDMA_STREAM_SLOTS * RDMA_STREAM_SLOT_BYTES;
	if (posix_memalign((void **)&s->slots, 4096, bytes)) {
		snprintf(why, cap, "out of memory");
		goto fail;
	}
	s->slots_mr = ibv_reg_mr(pd, s->slots, bytes, IBV_ACCESS_LOCAL_WRITE);
	if (!s->slots_mr) {
		rc = -errno;
		rdma_explain_reg_failure(errno, bytes, why, cap);
		goto fail;
	}
	for (unsigned i = 0; i < RDMA_STREAM_SLOTS; i++) {
		s->send_free[s->nsend_free++] = RDMA_STREAM_SLOTS - 1 - i;
		if ((rc = post_recv(s, i))) {
			snprintf(why, cap, "posting receives: %s", strerror(-rc));
			goto fail;
		}
	}
	/* Without a bounce arena (the server) the tables still exist, empty. */
	static const struct rdma_stream_cfg none;
	if ((rc = setup_onesided(s, pd, cfg ? cfg : &none, why, cap)))
		goto fail;
	s->epfd = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event e1 = { .events = EPOLLIN, .data.u32 = 1 };
	struct epoll_event e2 = { .events = EPOLLIN, .data.u32 = 2 };
	if (s->epfd < 0 || set_nonblock(s->cch->fd) ||
	    epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->cch->fd, &e1) ||
	    epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->ech->fd, &e2)) {
		rc = -errno;
		snprintf(why, cap, "epoll: %s", strerror(errno));
		goto fail;
	}
	*out = s;
	return 0;
fail:
	/* id goes back to the caller as it came: no QP, on its own channel. */
	if (s->qp) {
		if (s->own_qp)
			ibv_destroy_qp(s->qp);
		else
			rdma_destroy_qp(id);
		s->qp = NULL;
	}
	rdma_migrate_id(id, first);
	s->id = NULL;
	rdma_stream_destroy(s);
	return rc ? rc : -ENOMEM;
}

void rdma_stream_destroy(struct rdma_stream *s)
{
	if (!s)
		return;
	if (s->qp) {
		if (s->connected)
			disconnect(s);
		if (s->own_qp)
			ibv_destroy_qp(s->qp);
		else
			rdma_destroy_qp(s->id);
	}
	if (s->cq)
		ibv_destroy_cq(s->cq);
	if (s->cch)
		ibv_destroy_comp_channel(s->cch);
	if (s->slots_mr)
		ibv_dereg_mr(s->slots_mr);
	if (s->bounce_mr)
		ibv_dereg_mr(s->bounce_mr);
	if (s->id) {
		/* Events not yet read would make rdma_destroy_id wait for acks. */
		struct rdma_cm_event *ev;
		while (rdma_get_cm_event(s->ech, &ev) == 0)
			rdma_ack_cm_event(ev);
		rdma_destroy_id(s->id);
	}
	if (s->ech)
		rdma_destroy_event_channel(s->ech);
	if (s->epfd >= 0)
		close(s->epfd);
	free(s->slots);
	free(s->bounce);
	free(s->bounce_used);
	free(s->ops);
	free(s->ops_free);
	free(s->done_cookie);
	free(s->done_status);
	free(s);
}
