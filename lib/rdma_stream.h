/* SPDX-License-Identifier: MIT */
/*
 * One RDMA RC connection as a byte stream, plus one-sided page transfers.
 *
 * Both ends speak the same frames as over TCP (proto/wire.h): the stream
 * carries them in SEND messages into a ring of posted receive buffers, so
 * the frame reader both sides share (frame_reader.h) need not know which
 * transport it sits on; stream_rdma.c makes it a struct stream. Clients
 * also move pages with RDMA READ and WRITE straight into the server's
 * registered extents (rdma_stream_post_onesided); no server CPU touches
 * those.
 *
 * Everything is non-blocking. rdma_stream_fd() is one descriptor (an epoll
 * set over the completion channel and the connection's CM channel) that is
 * readable whenever something happened; rdma_stream_process() then drains
 * completions and connection events. A stream is used by one thread at a
 * time.
 *
 * Flow control: a sender has at most as many SENDs in flight as the peer has
 * receive buffers, and the QP retries RNR without limit, so a receiver that
 * stops consuming stalls its peer's sends, like a full TCP window.
 *
 * Remote access. A client's QP lets the peer RDMA READ and WRITE (the
 * rdma_cm default), but it registers nothing the peer could reach. A server
 * stream (cfg.passive_locked) is different: its QP lives in a protection
 * domain with the identity's extents, so it is created here, outside
 * rdma_cm, and taken through INIT, RTR and RTS by rdma_stream_accept with
 * no remote access at all: the HCA answers every READ or WRITE from the
 * peer with an invalid-request NAK, which breaks that connection and no
 * other. Only rdma_stream_allow_remote opens it (ibv_modify_qp of the access
 * flags, RTS to RTS), once the server knows who the peer is.
 */
#ifndef SPILLWAY_RDMA_STREAM_H
#define SPILLWAY_RDMA_STREAM_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

struct rdma_cm_id;
struct rdma_conn_param;
struct ibv_pd;
struct rdma_stream;

#define RDMA_STREAM_SLOTS      32            /* SEND buffers = RECV buffers */
#define RDMA_STREAM_SLOT_BYTES (64 * 1024)

struct rdma_stream_cfg {
	/* Client side: a registered bounce arena for one-sided transfers whose
	 * buffer is not registered (0: no one-sided operations). */
	size_t bounce_bytes;
	unsigned onesided_max;   /* one-sided operations in flight */
	/* Server side: the QP refuses the peer's RDMA READ and WRITE until
	 * rdma_stream_allow_remote; accept with rdma_stream_accept. */
	int passive_locked;
};

/*
 * Create the CQ, completion channel, QP (on id, in pd) and buffers, and post
 * the receives. id must have its route resolved (client) or come from a
 * connect request (server); the stream takes ownership of id, which is moved
 * onto an event channel of its own. 0 or -errno, with why filled; on failure
 * id is still the caller's, without a QP, on the channel it came on.
 */
int rdma_stream_create(struct rdma_cm_id *id, struct ibv_pd *pd,
		       const struct rdma_stream_cfg *cfg, struct rdma_stream **out,
		       char *why, size_t why_cap);
void rdma_stream_destroy(struct rdma_stream *s);

/*
 * Server side: accept the connect request the stream's id came from (id as
 * given to rdma_stream_create, cfg.passive_locked), with cp's parameters.
 * The QP reaches RTS with no remote access before the reply leaves, so there
 * is no moment at which the peer could read or write. 0 or -errno.
 */
int rdma_stream_accept(struct rdma_stream *s, struct rdma_conn_param *cp);
/* Let the peer RDMA READ and WRITE memory registered for remote access in
 * the stream's protection domain. 0 or -errno (the QP has failed). */
int rdma_stream_allow_remote(struct rdma_stream *s);

struct rdma_cm_id *rdma_stream_id(struct rdma_stream *s);
int rdma_stream_fd(struct rdma_stream *s);

/* Drain completions and CM events. 0, or the -errno that killed the stream. */
int rdma_stream_process(struct rdma_stream *s);
/* Block until rdma_stream_fd is readable, busy-polling the CQ for spin_us
 * first. 1 if something happened, 0 on timeout, -errno. */
int rdma_stream_wait(struct rdma_stream *s, int timeout_ms, int spin_us);

/* Bytes taken (copied), -EAGAIN when no SEND buffer is free, -errno. */
ssize_t rdma_stream_sendv(struct rdma_stream *s, const struct iovec *iov, int iovcnt);
/* Bytes received, 0 at end of stream, -EAGAIN when nothing is buffered. */
ssize_t rdma_stream_recv(struct rdma_stream *s, void *buf, size_t len);
/* Can a sendv take bytes now? */
int rdma_stream_can_send(const struct rdma_stream *s);
/* Bytes received and not yet consumed (the fd does not say so again). */
int rdma_stream_has_input(const struct rdma_stream *s);
/* 0 while usable, else why it is not. */
int rdma_stream_error(const struct rdma_stream *s);
/* Has the connection been established (ESTABLISHED seen)? */
int rdma_stream_connected(const struct rdma_stream *s);

/*
 * One-sided transfer of len bytes between buf and the peer's (raddr, rkey):
 * RDMA WRITE if write, else RDMA READ. buf goes through the bounce arena
 * (copied in before a WRITE, out after a READ completes), so the caller's
 * memory needs no registration and may be anywhere. One work request, one
 * scatter/gather element, however large. 0, -EAGAIN (no room: reap first),
 * -EMSGSIZE (larger than the arena), -errno.
 */
int rdma_stream_post_onesided(struct rdma_stream *s, int write, uint64_t raddr, uint32_t rkey,
			      void *buf, size_t len, uint64_t cookie);
/* Completed one-sided transfers: up to max (cookie, status 0 or -errno). */
int rdma_stream_reap_onesided(struct rdma_stream *s, uint64_t *cookie, int *status, int max);
/* Completed transfers not yet reaped. */
unsigned rdma_stream_onesided_done(const struct rdma_stream *s);

#endif
