// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * Connections: TCP sockets connected, authenticated and registered by
 * spillctl, handed in with SPILL_IOC_SOCK. Each has a table of requests in
 * flight (req_id = generation << 16 | slot), a receive thread that matches
 * replies to them, and a send lock: submitters build and send their own
 * frames, so a request costs no thread wake-up on the way out.
 *
 * A connection dies on the first error of any kind: a failed send, end of
 * stream, a reply that breaks a rule of docs/protocol.md (magic, version,
 * lengths, an unknown req_id, a range that does not echo the request, a bad
 * CRC) or a request older than io_timeout. Its receive thread then fails
 * every request still in the table and exits; a worker unlinks it from the
 * server and tells the control device, and spillctl brings a replacement.
 *
 * Only the receive thread completes requests, so a reply can be received
 * straight into the request's pages: nothing else can finish it meanwhile.
 * It never acts on a reply before the request has fully left (a server may
 * answer early, or guess a req_id), and when the connection dies it waits
 * for the submitters still sending before it fails their requests.
 *
 * Memory pressure, as nbd does it: the socket may use the emergency reserves
 * (sk_set_memalloc) and allocates with GFP_NOIO, sends run with
 * PF_MEMALLOC set, and the receive thread runs with it all its life. The
 * socket never borrows the sending task's page fragment (sk_use_task_frag).
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/crc32c.h>
#include <linux/file.h>
#include <linux/in.h>
#include <linux/kthread.h>
#include <linux/net.h>
#include <linux/sched/mm.h>
#include <linux/slab.h>
#include <linux/socket.h>
#include <linux/uio.h>
#include <net/sock.h>

#include "spill.h"

#define SLOT_BITS 16
#define SLOT_MASK ((1u << SLOT_BITS) - 1)
#define IO_BATCH  16 /* page segments per sendmsg/recvmsg */

static void conn_release(struct kref *ref)
{
	struct spill_conn *conn = container_of(ref, struct spill_conn, ref);

	sockfd_put(conn->sock);
	kfree(conn->scratch);
	kvfree(conn->slots);
	kvfree(conn->free);
	kfree(conn);
}

void spill_conn_put(struct spill_conn *conn)
{
	kref_put(&conn->ref, conn_release);
}

void spill_conn_kill(struct spill_conn *conn, const char *why)
{
	bool first;

	spin_lock(&conn->lock);
	first = !conn->dead;
	conn->dead = true;
	spin_unlock(&conn->lock);
	if (!first)
		return;
	dev_info(disk_to_dev(conn->dev->disk), "server %u connection %u closed: %s\n",
		 conn->server, conn->pos, why);
	kernel_sock_shutdown(conn->sock, SHUT_RDWR);
	wake_up_all(&conn->wq);
}

/* --- sending ------------------------------------------------------------- */

static bool conn_writable(struct spill_conn *conn)
{
	return READ_ONCE(conn->dead) || sk_stream_is_writeable(conn->sock->sk);
}

/*
 * Send all of msg without ever sleeping inside the socket layer: a sender
 * may be a process in direct reclaim with a fatal signal pending, which
 * would turn a blocking send into a short one and cut a frame in half.
 * When the socket is full, wait for room ourselves.
 */
static int conn_send_msg(struct spill_conn *conn, struct msghdr *msg)
{
	unsigned long deadline = jiffies + READ_ONCE(spill_io_timeout) * HZ;
	struct sock *sk = conn->sock->sk;
	int rc;

	while (msg_data_left(msg)) {
		if (READ_ONCE(conn->dead))
			return -EPIPE;
		rc = sock_sendmsg(conn->sock, msg);
		if (rc > 0)
			continue;
		if (rc == 0)
			return -EPIPE;
		if (rc != -EAGAIN)
			return rc;
		if (time_after(jiffies, deadline))
			return -ETIMEDOUT;
		/*
		 * Room in the socket but still EAGAIN: no memory for a buffer.
		 * Let reclaim make some rather than spin.
		 */
		if (conn_writable(conn)) {
			schedule_timeout_uninterruptible(1);
			continue;
		}
		/* TCP wakes writers with wake_up_interruptible: sleep interruptibly,
		 * and without spinning when a signal is already pending. */
		if (wait_event_interruptible_timeout(*sk_sleep(sk), conn_writable(conn),
						     msecs_to_jiffies(100)) < 0)
			schedule_timeout_uninterruptible(1);
	}
	return 0;
}

static int conn_xmit(struct spill_conn *conn, struct spill_wire_hdr *h,
		     const struct bio_vec *bvec, struct bvec_iter iter)
{
	struct kvec kv = { .iov_base = h, .iov_len = sizeof(*h) };
	struct msghdr msg = { .msg_flags = MSG_DONTWAIT | MSG_NOSIGNAL };
	struct bio_vec batch[IO_BATCH];
	unsigned int noreclaim, n = 0;
	struct bvec_iter it;
	struct bio_vec bv;
	size_t bytes = 0;
	int rc;

	noreclaim = memalloc_noreclaim_save();
	if (bvec && iter.bi_size)
		msg.msg_flags |= MSG_MORE;
	iov_iter_kvec(&msg.msg_iter, ITER_SOURCE, &kv, 1, kv.iov_len);
	rc = conn_send_msg(conn, &msg);
	if (!rc && bvec) {
		for_each_bvec(bv, bvec, it, iter) {
			bool last = it.bi_size == bv.bv_len;

			batch[n++] = bv;
			bytes += bv.bv_len;
			if (n < IO_BATCH && !last)
				continue;
			msg.msg_flags = MSG_DONTWAIT | MSG_NOSIGNAL | (last ? 0 : MSG_MORE);
			iov_iter_bvec(&msg.msg_iter, ITER_SOURCE, batch, n, bytes);
			rc = conn_send_msg(conn, &msg);
			if (rc)
				break;
			n = 0;
			bytes = 0;
		}
	}
	memalloc_noreclaim_restore(noreclaim);
	return rc;
}

/*
 * Queue cmd on conn and send it. Returns 0 once the request is in the table:
 * its completion (cmd->done) then always follows, with an error if the
 * connection dies. -ENOTCONN if the connection is already dead (nothing
 * queued: try another).
 */
int spill_conn_queue(struct spill_conn *conn, struct spill_cmd *cmd)
{
	u32 payload = cmd->op == SPILL_OP_WRITE ? (u32)cmd->npages * SPILL_PAGE_SIZE : 0;
	const struct bio_vec *bvec = payload ? cmd->bvec : NULL;
	struct bvec_iter iter = cmd->iter;
	struct spill_wire_hdr h;
	u32 idx, state;
	int rc;

	spin_lock(&conn->lock);
	while (!conn->dead && !conn->nfree) {
		spin_unlock(&conn->lock);
		wait_event_timeout(conn->wq, READ_ONCE(conn->nfree) || READ_ONCE(conn->dead), HZ);
		spin_lock(&conn->lock);
	}
	if (conn->dead) {
		spin_unlock(&conn->lock);
		return -ENOTCONN;
	}
	idx = conn->free[--conn->nfree];
	conn->slots[idx].gen++;
	conn->slots[idx].cmd = cmd;
	conn->slots[idx].sending = true;
	cmd->req_id = (u64)conn->slots[idx].gen << SLOT_BITS | idx;
	cmd->start = jiffies;
	cmd->conn = conn;
	kref_get(&conn->ref);
	list_add_tail(&cmd->node, &conn->inflight);
	conn->senders++;
	spin_unlock(&conn->lock);

	/* The receive thread leaves cmd alone until sending is cleared. */
	spill_wire_request(&h, cmd, payload);
	state = spill_crc_begin(&h);
	if (bvec)
		state = spill_crc_bvec(state, bvec, iter);
	h.crc = cpu_to_le32(spill_crc_end(state));

	mutex_lock(&conn->tx_lock);
	rc = READ_ONCE(conn->dead) ? -EPIPE : conn_xmit(conn, &h, bvec, iter);
	mutex_unlock(&conn->tx_lock);
	if (rc)
		spill_conn_kill(conn, rc == -ETIMEDOUT ? "send timed out" : "send failed");

	/* From here on the reply may complete cmd at any moment. */
	spin_lock(&conn->lock);
	conn->slots[idx].sending = false;
	conn->senders--;
	spin_unlock(&conn->lock);
	wake_up_all(&conn->wq);
	return 0;
}

/*
 * Send a control frame that gets no reply (ReclaimReply): len bytes of
 * protobuf payload. No slot is taken; a failed send kills the connection.
 */
int spill_conn_send_ctrl(struct spill_conn *conn, const void *buf, u32 len)
{
	struct spill_wire_hdr h = {};
	struct kvec kv[2] = { { .iov_base = &h, .iov_len = sizeof(h) },
			      { .iov_base = (void *)buf, .iov_len = len } };
	struct msghdr msg = { .msg_flags = MSG_DONTWAIT | MSG_NOSIGNAL };
	unsigned int noreclaim;
	int rc;

	h.magic = cpu_to_le32(SPILL_WIRE_MAGIC);
	h.version = SPILL_WIRE_VERSION;
	h.op = cpu_to_le16(SPILL_OP_CTRL);
	h.payload_len = cpu_to_le32(len);
	h.crc = cpu_to_le32(spill_crc_end(crc32c(spill_crc_begin(&h), buf, len)));
	iov_iter_kvec(&msg.msg_iter, ITER_SOURCE, kv, 2, sizeof(h) + len);
	noreclaim = memalloc_noreclaim_save();
	mutex_lock(&conn->tx_lock);
	rc = READ_ONCE(conn->dead) ? -EPIPE : conn_send_msg(conn, &msg);
	mutex_unlock(&conn->tx_lock);
	memalloc_noreclaim_restore(noreclaim);
	if (rc)
		spill_conn_kill(conn, "send failed");
	return rc;
}

/* --- receiving ----------------------------------------------------------- */

static int conn_recv_msg(struct spill_conn *conn, struct msghdr *msg)
{
	int rc;

	while (msg_data_left(msg)) {
		rc = sock_recvmsg(conn->sock, msg, MSG_WAITALL | MSG_NOSIGNAL);
		if (rc <= 0)
			return rc ? rc : -ECONNRESET;
	}
	return 0;
}

static int conn_recv(struct spill_conn *conn, void *buf, size_t len)
{
	struct kvec kv = { .iov_base = buf, .iov_len = len };
	struct msghdr msg = {};

	iov_iter_kvec(&msg.msg_iter, ITER_DEST, &kv, 1, len);
	return conn_recv_msg(conn, &msg);
}

/* Receive the bytes a bvec iterator covers, straight into its pages. */
static int conn_recv_bvec(struct spill_conn *conn, const struct bio_vec *bvec,
			  struct bvec_iter iter)
{
	struct bio_vec batch[IO_BATCH];
	struct msghdr msg = {};
	struct bvec_iter it;
	struct bio_vec bv;
	unsigned int n = 0;
	size_t bytes = 0;
	int rc;

	for_each_bvec(bv, bvec, it, iter) {
		batch[n++] = bv;
		bytes += bv.bv_len;
		if (n < IO_BATCH && it.bi_size != bv.bv_len)
			continue;
		iov_iter_bvec(&msg.msg_iter, ITER_DEST, batch, n, bytes);
		rc = conn_recv_msg(conn, &msg);
		if (rc)
			return rc;
		n = 0;
		bytes = 0;
	}
	return 0;
}

/* A control message from the server (notify.c acts on it). */
static int conn_ctrl(struct spill_conn *conn, const struct spill_wire_hdr *w, u32 len,
		     const char **why)
{
	int rc;

	if (len > PAGE_SIZE) {
		*why = "control message too large";
		return -EMSGSIZE;
	}
	rc = conn_recv(conn, conn->scratch, len);
	if (rc)
		return rc;
	if (spill_crc_end(crc32c(spill_crc_begin(w), conn->scratch, len)) !=
	    le32_to_cpu(w->crc)) {
		*why = "bad checksum on a control message";
		return -EBADMSG;
	}
	return spill_notify_ctrl(conn, conn->scratch, len, why);
}

static void conn_complete(struct spill_conn *conn, struct spill_cmd *cmd, int status)
{
	u32 idx = cmd->req_id & SLOT_MASK;

	spin_lock(&conn->lock);
	conn->slots[idx].cmd = NULL;
	conn->free[conn->nfree++] = idx;
	list_del(&cmd->node);
	spin_unlock(&conn->lock);
	wake_up(&conn->wq);
	cmd->conn = NULL;
	cmd->status = status;
	spill_note_latency(cmd);
	cmd->done(cmd);
	spill_conn_put(conn);
}

static bool slot_sending(struct spill_conn *conn, u32 idx)
{
	bool sending;

	spin_lock(&conn->lock);
	sending = conn->slots[idx].sending;
	spin_unlock(&conn->lock);
	return sending;
}

/*
 * The request a reply with this req_id answers, once it has fully left;
 * NULL if it answers none. A reply can arrive while its request is still
 * being sent (a refusal after the header, or a server guessing ids), and a
 * submitter can take a free slot at any moment, even while we wait: so the
 * generation and the sending flag are checked together under the lock, and
 * again after every wait, until the slot is settled. Once its request has
 * left, only this thread can change the slot.
 */
static struct spill_cmd *conn_match(struct spill_conn *conn, u64 req_id)
{
	u32 idx = req_id & SLOT_MASK, gen = (u32)(req_id >> SLOT_BITS);
	struct spill_slot *slot;
	struct spill_cmd *cmd;

	if (idx >= conn->window)
		return NULL;
	slot = &conn->slots[idx];
	spin_lock(&conn->lock);
	while (slot->cmd && slot->gen == gen && slot->sending) {
		spin_unlock(&conn->lock);
		wait_event(conn->wq, !slot_sending(conn, idx));
		spin_lock(&conn->lock);
	}
	cmd = slot->gen == gen ? slot->cmd : NULL;
	spin_unlock(&conn->lock);
	return cmd;
}

/* Is every page of a READ reply's presence map present? */
static bool map_full(const u8 *map, u16 npages)
{
	u16 i;

	for (i = 0; i < npages; i++)
		if (!(map[i / 8] & (1u << (i % 8))))
			return false;
	return true;
}

/*
 * Receive and act on one frame. 0, or -errno with *why set when the stream
 * broke a rule (the connection then dies).
 */
static int conn_rx_one(struct spill_conn *conn, const char **why)
{
	struct spill_wire_hdr w;
	struct spill_cmd *cmd;
	u16 op, status, npages;
	u32 len, state;
	bool has_map;
	u64 req_id;
	int rc;

	rc = conn_recv(conn, &w, sizeof(w));
	if (rc) {
		*why = rc == -ECONNRESET ? "closed by the server" : "receive failed";
		return rc;
	}
	*why = "malformed frame";
	op = le16_to_cpu(w.op);
	status = le16_to_cpu(w.status);
	npages = le16_to_cpu(w.npages);
	len = le32_to_cpu(w.payload_len);
	has_map = w.flags & SPILL_WF_PRESENT_MAP;
	if (le32_to_cpu(w.magic) != SPILL_WIRE_MAGIC || w.version != SPILL_WIRE_VERSION ||
	    (w.flags & ~SPILL_WF_PRESENT_MAP) || len > SPILL_MAX_PAYLOAD ||
	    status >= SPILL_ST_MAX)
		return -EPROTO;
	if (!(op & SPILL_OP_REPLY)) {
		if (op != SPILL_OP_CTRL || w.flags || !len || len > SPILL_MAX_CTRL_PAYLOAD) {
			*why = "unexpected request from the server";
			return -EPROTO;
		}
		return conn_ctrl(conn, &w, len, why);
	}
	op &= ~SPILL_OP_REPLY;

	req_id = le64_to_cpu(w.req_id);
	cmd = conn_match(conn, req_id);
	if (!cmd || cmd->req_id != req_id || cmd->op != op) {
		*why = "reply to no request of ours";
		return -EPROTO;
	}
	if ((op == SPILL_OP_READ || op == SPILL_OP_WRITE || op == SPILL_OP_INVALIDATE) &&
	    (le64_to_cpu(w.extent_id) != cmd->extent || le32_to_cpu(w.page) != cmd->page ||
	     npages != cmd->npages)) {
		*why = "reply range differs from the request";
		return -EPROTO;
	}

	state = spill_crc_begin(&w);
	if (op == SPILL_OP_READ && len) {
		if (len != (u32)npages * SPILL_PAGE_SIZE + (has_map ? SPILL_PRESENT_MAP_BYTES : 0) ||
		    (status != SPILL_ST_OK && status != SPILL_ST_ABSENT)) {
			*why = "READ reply length or status is wrong";
			return -EPROTO;
		}
		if (has_map) {
			rc = conn_recv(conn, conn->scratch, SPILL_PRESENT_MAP_BYTES);
			if (rc)
				return rc;
			state = crc32c(state, conn->scratch, SPILL_PRESENT_MAP_BYTES);
		}
		rc = conn_recv_bvec(conn, cmd->bvec, cmd->iter);
		if (rc) {
			*why = "receive failed";
			return rc;
		}
		state = spill_crc_bvec(state, cmd->bvec, cmd->iter);
	} else if (len || w.flags || (op == SPILL_OP_READ && status == SPILL_ST_OK)) {
		*why = "reply payload does not fit its op";
		return -EPROTO;
	}
	if (spill_crc_end(state) != le32_to_cpu(w.crc)) {
		*why = "bad checksum";
		return -EBADMSG;
	}

	rc = spill_wire_status_errno(status);
	if (op == SPILL_OP_READ && len) {
		/* ABSENT always names the absent pages; and a page it calls
		 * absent is never taken for data, whatever the map says. */
		if (status == SPILL_ST_ABSENT && !has_map) {
			*why = "ABSENT reply without a presence map";
			return -EPROTO;
		}
		rc = status == SPILL_ST_ABSENT || (has_map && !map_full(conn->scratch, npages)) ?
		     -ENODATA : 0;
	}
	if (op == SPILL_OP_ALLOC && !rc)
		cmd->reply_extent = le64_to_cpu(w.extent_id);
	if (status == SPILL_ST_ENOREG) {
		/*
		 * The server no longer knows the identity this connection
		 * registered: nothing sent on it can succeed. Close it, so that
		 * spillctl registers again, rather than let readers retry on it
		 * in a loop.
		 */
		conn_complete(conn, cmd, -ENOTCONN);
		*why = "the server no longer knows our identity";
		return -ENOLINK;
	}
	conn_complete(conn, cmd, rc);
	return 0;
}

/* The connection is dead: fail what is left once no sender is mid-frame. */
static void conn_drain(struct spill_conn *conn, int err)
{
	struct spill_cmd *cmd, *tmp;
	LIST_HEAD(failed);

	spin_lock(&conn->lock);
	conn->dead = true;
	spin_unlock(&conn->lock);
	wait_event(conn->wq, !READ_ONCE(conn->senders));

	spin_lock(&conn->lock);
	list_splice_init(&conn->inflight, &failed);
	list_for_each_entry(cmd, &failed, node)
		conn->slots[cmd->req_id & SLOT_MASK].cmd = NULL;
	spin_unlock(&conn->lock);

	list_for_each_entry_safe(cmd, tmp, &failed, node) {
		list_del(&cmd->node);
		cmd->conn = NULL;
		cmd->status = err;
		cmd->done(cmd);
		spill_conn_put(conn);
	}
}

/* After the receive thread: unlink from the server, tell spillctl, drop the
 * thread's reference. Runs as work so the thread can exit first. */
static void conn_reap(struct work_struct *work)
{
	struct spill_conn *conn = container_of(work, struct spill_conn, reap);
	struct spill_dev *dev = conn->dev;
	struct spill_server *srv = &dev->srv[conn->server];
	bool linked = false;

	wait_for_completion(&conn->rx_done);
	spin_lock(&dev->conn_lock);
	if (srv->conns[conn->pos] == conn) {
		srv->conns[conn->pos] = NULL;
		linked = true;
	}
	spin_unlock(&dev->conn_lock);
	spill_server_note(dev, conn->server); /* io.c: down since when */
	if (linked) {
		atomic64_inc(&srv->conn_failures);
		spill_conn_put(conn);
	}
	spill_conn_put(conn);
	spill_ctl_event();
	wake_up_all(&dev->conn_wq);
}

static int conn_rx_thread(void *data)
{
	struct spill_conn *conn = data;
	unsigned int noreclaim = memalloc_noreclaim_save();
	const char *why = "stopped";
	int rc;

	while (!(rc = conn_rx_one(conn, &why)))
		;
	spill_conn_kill(conn, why);
	conn_drain(conn, rc == -ETIMEDOUT ? -ETIMEDOUT : -EPIPE);
	memalloc_noreclaim_restore(noreclaim);
	queue_work(spill_reap_wq, &conn->reap);
	kthread_complete_and_exit(&conn->rx_done, 0);
}

/* --- set-up and lookup --------------------------------------------------- */

static int conn_check_socket(struct socket *sock)
{
	struct sock *sk = sock->sk;

	if (!sk || sock->type != SOCK_STREAM || sk->sk_protocol != IPPROTO_TCP ||
	    (sk->sk_family != AF_INET && sk->sk_family != AF_INET6))
		return -EINVAL;
	if (sock->ops->shutdown == sock_no_shutdown)
		return -EINVAL;
	if (READ_ONCE(sk->sk_state) != TCP_ESTABLISHED)
		return -ENOTCONN;
	return 0;
}

static struct spill_conn *conn_alloc(struct spill_dev *dev, struct socket *sock, u32 window)
{
	struct spill_conn *conn = kzalloc(sizeof(*conn), GFP_KERNEL);
	u32 i;

	if (!conn)
		return NULL;
	conn->window = min_t(u32, window, SPILL_MAX_WINDOW);
	conn->slots = kvcalloc(conn->window, sizeof(*conn->slots), GFP_KERNEL);
	conn->free = kvcalloc(conn->window, sizeof(*conn->free), GFP_KERNEL);
	conn->scratch = kmalloc(PAGE_SIZE, GFP_KERNEL);
	if (!conn->slots || !conn->free || !conn->scratch) {
		kvfree(conn->slots);
		kvfree(conn->free);
		kfree(conn->scratch);
		kfree(conn);
		return NULL;
	}
	for (i = 0; i < conn->window; i++)
		conn->free[i] = conn->window - 1 - i;
	conn->nfree = conn->window;
	kref_init(&conn->ref);
	conn->dev = dev;
	conn->sock = sock;
	mutex_init(&conn->tx_lock);
	spin_lock_init(&conn->lock);
	init_waitqueue_head(&conn->wq);
	INIT_LIST_HEAD(&conn->inflight);
	init_completion(&conn->rx_done);
	INIT_WORK(&conn->reap, conn_reap);
	return conn;
}

/* Live connections of the server's current session. dev->conn_lock held. */
static unsigned int server_live(const struct spill_server *srv)
{
	unsigned int i, n = 0;

	for (i = 0; i < SPILL_MAX_CONNS; i++)
		n += srv->conns[i] && !READ_ONCE(srv->conns[i]->dead) &&
		     srv->conns[i]->epoch == srv->epoch;
	return n;
}

static bool server_has_live(const struct spill_server *srv)
{
	return server_live(srv);
}

/* Called with spill_devs_lock held (the device cannot go away). */
int spill_conn_add(struct spill_dev *dev, const struct spill_ioc_sock *arg)
{
	struct spill_server *srv;
	struct spill_conn *conn;
	struct task_struct *rx;
	struct socket *sock;
	unsigned int pos;
	int rc;

	if (arg->server >= dev->nservers || !arg->window || arg->pad ||
	    (arg->flags & ~(SPILL_SOCK_RESET | SPILL_SOCK_RECONNECT)))
		return -EINVAL;
	sock = sockfd_lookup(arg->fd, &rc);
	if (!sock)
		return rc;
	rc = conn_check_socket(sock);
	if (rc) {
		sockfd_put(sock);
		return rc;
	}
	conn = conn_alloc(dev, sock, arg->window);
	if (!conn) {
		sockfd_put(sock);
		return -ENOMEM;
	}
	conn->server = arg->server;
	/* The table's reference is the first; this one is the thread's. */
	kref_get(&conn->ref);
	rx = kthread_create(conn_rx_thread, conn, "spillway%u-s%u", dev->index, arg->server);
	if (IS_ERR(rx)) {
		spill_conn_put(conn);
		spill_conn_put(conn); /* releases the socket */
		return PTR_ERR(rx);
	}

	sk_set_memalloc(sock->sk);
	sock->sk->sk_allocation = GFP_NOIO | __GFP_MEMALLOC;
	sock->sk->sk_rcvtimeo = MAX_SCHEDULE_TIMEOUT; /* spillctl set a timeout */
	sock->sk->sk_sndtimeo = MAX_SCHEDULE_TIMEOUT;
#ifdef SPILL_HAVE_SK_USE_TASK_FRAG
	/*
	 * Sends run in whatever task submits the I/O, often one in reclaim
	 * that was itself in the middle of building a frame in
	 * current->task_frag: the socket must take its page fragments from
	 * its own sk_frag instead (since 6.2 sk_page_frag() checks only this).
	 */
	sock->sk->sk_use_task_frag = false;
#endif

	srv = &dev->srv[arg->server];
	spin_lock(&dev->conn_lock);
	for (pos = 0; pos < SPILL_MAX_CONNS && srv->conns[pos]; pos++)
		;
	rc = pos == SPILL_MAX_CONNS ? -ENOSPC : 0;
	if (!rc && (arg->flags & SPILL_SOCK_RESET)) {
		if (server_has_live(srv)) {
			rc = -EBUSY;
		} else {
			/* Extents and copies of the old session are ignored from now on. */
			srv->epoch++;
			atomic64_inc(&srv->resets);
			atomic64_set(&srv->extents, 0);
		}
	}
	if (!rc) {
		conn->pos = pos;
		conn->epoch = srv->epoch;
		srv->conns[pos] = conn;
	}
	spin_unlock(&dev->conn_lock);
	if (rc) {
		kthread_stop(rx); /* never woken: the thread function does not run */
		spill_conn_put(conn);
		spill_conn_put(conn);
		return rc;
	}
	atomic64_inc(&srv->sockets_added);
	if (arg->flags & SPILL_SOCK_RECONNECT)
		atomic64_inc(&srv->reconnects);
	dev_info(disk_to_dev(dev->disk), "server %u connection %u up (window %u, session %u)\n",
		 arg->server, pos, conn->window, conn->epoch);
	/* From here the connection may die and be freed at any time. */
	wake_up_process(rx);
	spill_ctl_event();
	wake_up_all(&dev->conn_wq);
	spill_repair_kick(dev);
	return 0;
}

/* A live connection to server in session epoch, referenced; NULL if none. */
struct spill_conn *spill_conn_get(struct spill_dev *dev, unsigned int server, u32 epoch)
{
	struct spill_server *srv = &dev->srv[server];
	struct spill_conn *conn = NULL;
	unsigned int i;

	spin_lock(&dev->conn_lock);
	if (srv->epoch == epoch) {
		for (i = 0; i < SPILL_MAX_CONNS; i++) {
			struct spill_conn *c = srv->conns[(srv->rr + i) % SPILL_MAX_CONNS];

			if (c && !READ_ONCE(c->dead) && c->epoch == epoch) {
				conn = c;
				kref_get(&conn->ref);
				srv->rr += i + 1;
				break;
			}
		}
	}
	spin_unlock(&dev->conn_lock);
	return conn;
}

bool spill_server_up(struct spill_dev *dev, unsigned int server)
{
	bool up;

	spin_lock(&dev->conn_lock);
	up = server_has_live(&dev->srv[server]);
	spin_unlock(&dev->conn_lock);
	return up;
}

/* The server's live connections now, and its session in *epoch. */
unsigned int spill_server_conns(struct spill_dev *dev, unsigned int server, u32 *epoch)
{
	unsigned int n;

	spin_lock(&dev->conn_lock);
	n = server_live(&dev->srv[server]);
	*epoch = dev->srv[server].epoch;
	spin_unlock(&dev->conn_lock);
	return n;
}

u32 spill_server_epoch(struct spill_dev *dev, unsigned int server)
{
	u32 epoch;

	spin_lock(&dev->conn_lock);
	epoch = dev->srv[server].epoch;
	spin_unlock(&dev->conn_lock);
	return epoch;
}

/* Every connection of dev, referenced, into out[]; returns the count. */
static unsigned int conns_grab(struct spill_dev *dev, struct spill_conn **out)
{
	unsigned int s, i, n = 0;

	spin_lock(&dev->conn_lock);
	for (s = 0; s < dev->nservers; s++)
		for (i = 0; i < SPILL_MAX_CONNS; i++)
			if (dev->srv[s].conns[i]) {
				out[n] = dev->srv[s].conns[i];
				kref_get(&out[n++]->ref);
			}
	spin_unlock(&dev->conn_lock);
	return n;
}

static bool conns_gone(struct spill_dev *dev)
{
	unsigned int s, i;
	bool gone = true;

	spin_lock(&dev->conn_lock);
	for (s = 0; s < dev->nservers; s++)
		for (i = 0; i < SPILL_MAX_CONNS; i++)
			gone &= !dev->srv[s].conns[i];
	spin_unlock(&dev->conn_lock);
	return gone;
}

/* Kill every connection and wait until their threads and reapers are done. */
void spill_conns_stop(struct spill_dev *dev)
{
	struct spill_conn *conns[SPILL_MAX_SERVERS * SPILL_MAX_CONNS];
	unsigned int i, n = conns_grab(dev, conns);

	for (i = 0; i < n; i++) {
		spill_conn_kill(conns[i], "device removed");
		spill_conn_put(conns[i]);
	}
	wait_event(dev->conn_wq, conns_gone(dev));
	/* The reaper that unlinked the last one may still be waking us. */
	flush_workqueue(spill_reap_wq);
}

/* Kill connections whose oldest request has waited longer than io_timeout. */
void spill_conns_check_timeouts(struct spill_dev *dev)
{
	struct spill_conn *conns[SPILL_MAX_SERVERS * SPILL_MAX_CONNS];
	unsigned long limit = READ_ONCE(spill_io_timeout) * HZ;
	unsigned int i, n = conns_grab(dev, conns);

	for (i = 0; i < n; i++) {
		struct spill_conn *conn = conns[i];
		struct spill_cmd *oldest;
		bool expired;

		spin_lock(&conn->lock);
		oldest = list_first_entry_or_null(&conn->inflight, struct spill_cmd, node);
		expired = oldest && time_after(jiffies, oldest->start + limit);
		spin_unlock(&conn->lock);
		if (expired && !READ_ONCE(conn->dead)) {
			atomic64_inc(&dev->srv[conn->server].io_errors);
			atomic64_inc(&dev->st.timeouts);
			spill_conn_kill(conn, "request timed out");
		}
		spill_conn_put(conn);
	}
}
