/* SPDX-License-Identifier: MIT */
/*
 * One connection's bytes, whichever end and whichever wire: the interface
 * both spillwayd's connections and the client library do their I/O through.
 * Two implementations: stream sockets (TCP and Unix, stream_socket.c) and
 * RDMA (stream_rdma.c, over rdma_stream). Constructors: the client connects
 * by URL (transport.h); the server wraps what its listeners accepted
 * (stream_socket_wrap, stream_rdma_wrap).
 *
 * Return values, for every operation: bytes moved (>0), 0 for end of stream
 * (recv), -EAGAIN when the call would block (or recv_wait timed out), or
 * -errno. sendv and recv never block. recv_wait blocks for at most the
 * stream's timeout_ms (one system call on the latency path for sockets);
 * over RDMA it also returns -EINTR when only one-sided transfers completed.
 *
 * Readiness. A socket stream's fd says "input" when readable and "room to
 * send" when writable, like any socket. A stream with STREAM_EVENTS set
 * works differently, and an event loop must ask the flag, never the type:
 * its fd becomes readable when anything happened (input, a send finished, a
 * connection event), never writable; the loop keeps it watched, calls
 * stream_process on every wake-up and then retries both directions; input
 * that process already took in does not make the fd readable again, which
 * stream_has_input tells.
 *
 * A stream is used by one thread at a time. Core library code makes its
 * system calls directly (sysio.h), never through the names libspillway
 * interposes.
 */
#ifndef SPILLWAY_STREAM_H
#define SPILLWAY_STREAM_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

struct stream;
struct rdma_stream;

/* stream.flags */
#define STREAM_EVENTS 0x1u /* fd is an event channel: see the top of this file */

struct stream_ops {
	int (*fd)(struct stream *s);
	ssize_t (*sendv)(struct stream *s, const struct iovec *iov, int iovcnt);
	ssize_t (*recv)(struct stream *s, void *buf, size_t len);
	ssize_t (*recv_wait)(struct stream *s, void *buf, size_t len);
	/* Take in what the fd signalled: 0, or the -errno that ended the
	 * stream (-ECONNRESET once the peer left). NULL: nothing to do. */
	int (*process)(struct stream *s);
	/* Input taken in and not yet received (STREAM_EVENTS). NULL: none. */
	int (*has_input)(const struct stream *s);
	void (*close)(struct stream *s);
	/* One-sided page transfer (RDMA; NULL elsewhere): see rdma_stream.h. */
	int (*post_onesided)(struct stream *s, int write, uint64_t raddr, uint32_t rkey,
			     void *buf, size_t len, uint64_t cookie);
	int (*reap_onesided)(struct stream *s, uint64_t *cookie, int *status, int max);
	/* Server side: let the peer reach memory registered for remote access
	 * (RDMA; NULL elsewhere). 0 or -errno. */
	int (*allow_remote)(struct stream *s);
};

struct stream {
	const struct stream_ops *ops;
	unsigned flags;           /* STREAM_* */
	int timeout_ms;           /* bound of recv_wait */
	/* Called by close once the connection's resources are gone (e.g. the
	 * protection domain its queue pair lived in); NULL: none. */
	void (*after_close)(void *arg);
	void *after_close_arg;
};

/*
 * A connected stream socket (TCP or Unix) as a stream; it owns fd from here,
 * also on failure. Blocking or not, every call that must not wait says
 * MSG_DONTWAIT; recv_wait waits as the socket does (clients set
 * SO_RCVTIMEO to timeout_ms). 0 or -ENOMEM.
 */
int stream_socket_wrap(int fd, int timeout_ms, struct stream **out);

/*
 * A connected RDMA stream as a stream; it owns rs from here, also on
 * failure. close destroys rs, then calls after_close(arg) (may be NULL): a
 * protection domain must outlive the queue pair in it. 0 or -ENOMEM.
 */
int stream_rdma_wrap(struct rdma_stream *rs, int timeout_ms, void (*after_close)(void *arg),
		     void *arg, struct stream **out);

static inline int stream_fd(struct stream *s) { return s->ops->fd(s); }
static inline ssize_t stream_sendv(struct stream *s, const struct iovec *iov, int n)
{
	return s->ops->sendv(s, iov, n);
}
static inline ssize_t stream_recv(struct stream *s, void *buf, size_t len)
{
	return s->ops->recv(s, buf, len);
}
static inline ssize_t stream_recv_wait(struct stream *s, void *buf, size_t len)
{
	return s->ops->recv_wait(s, buf, len);
}
static inline int stream_process(struct stream *s)
{
	return s->ops->process ? s->ops->process(s) : 0;
}
static inline int stream_has_input(const struct stream *s)
{
	return s->ops->has_input ? s->ops->has_input(s) : 0;
}
static inline int stream_allow_remote(struct stream *s)
{
	return s->ops->allow_remote ? s->ops->allow_remote(s) : -ENOTSUP;
}
static inline void stream_close(struct stream *s)
{
	if (s)
		s->ops->close(s);
}

#endif
