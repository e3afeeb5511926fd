/* SPDX-License-Identifier: MIT */
/*
 * One NBD connection, served by its own thread with blocking I/O: the
 * handshake (nbd_handshake.c), then requests in order (nbd_transmit.c).
 * NBD clients pipeline requests on a socket and a thread per connection keeps
 * the code straight; data copies go straight to and from extent memory.
 */
#ifndef SPILLWAY_NBD_CONN_H
#define SPILLWAY_NBD_CONN_H

#include <stdint.h>

#include "nbd_io.h"
#include "admission.h"

struct nbd_export;

/* The listener sets every field but the counters before the thread starts.
 * The connection holds no data buffer between requests (nbd_buf.h). */
struct nbd_conn {
	struct nbd_io io;   /* the socket and its current time limits */
	char peer[64];
	int stall_ms;       /* transmission: a started request's longest pause */
	int idle_ms;        /* transmission: wait for the first request; 0: forever */
	int attached_idle_ms; /* ... and between later requests; 0: forever */
	uint64_t requests, errors;
	struct nbd_conn *prev, *next; /* the listener's list */
	struct admission_ticket adm;  /* its place (admission.c) */
};

/* Fixed newstyle negotiation: the attached export, or NULL (closed, aborted
 * or broken; logged). */
struct nbd_export *nbd_handshake(struct nbd_conn *c);
/* Serve requests until NBD_CMD_DISC, EOF, a broken request or a timeout
 * (c->io.timed_out says which). */
void nbd_transmit(struct nbd_conn *c, struct nbd_export *x);

/* Transmission flags for an export: what this server does. */
uint16_t nbd_transmission_flags(void);

#endif
