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

#include "admission.h"

struct nbd_export;

struct nbd_conn {
	int fd;
	char peer[64];
	uint8_t *buf;       /* request/reply data, grown up to NBD_BLOCK_MAX */
	uint32_t buf_cap;
	uint64_t requests, errors;
	struct nbd_conn *prev, *next; /* the listener's list */
	struct admission_ticket adm;  /* its place (admission.c) */
};

/* Fixed newstyle negotiation: the attached export, or NULL (closed, aborted
 * or broken; logged). */
struct nbd_export *nbd_handshake(struct nbd_conn *c);
/* Serve requests until NBD_CMD_DISC, EOF or a broken request. */
void nbd_transmit(struct nbd_conn *c, struct nbd_export *x);

/* Transmission flags for an export: what this server does. */
uint16_t nbd_transmission_flags(void);

#endif
