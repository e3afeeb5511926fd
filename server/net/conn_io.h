/* SPDX-License-Identifier: MIT */
/* A connection's transport: TCP socket or RDMA stream (see conn_io.c). */
#ifndef SPILLWAY_CONN_IO_H
#define SPILLWAY_CONN_IO_H

#include <sys/types.h>
#include <sys/uio.h>

struct conn;
struct evbuffer;

ssize_t conn_io_recv(struct conn *c, void *buf, size_t len);
ssize_t conn_io_sendv(struct conn *c, const struct iovec *iov, int iovcnt);
/* Send from the front of b, draining what left. */
ssize_t conn_io_send_buffer(struct conn *c, struct evbuffer *b);
/* The descriptor the worker's loop watches. */
int conn_io_fd(const struct conn *c);
void conn_io_close(struct conn *c);

#endif
