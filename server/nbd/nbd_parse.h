/* SPDX-License-Identifier: MIT */
/*
 * The NBD wire messages a client sends, parsed and judged without I/O: the
 * client flags, an option header, the payloads of NBD_OPT_INFO/GO and
 * NBD_OPT_EXPORT_NAME, a transmission request header, and the error a request
 * gets before any data moves. Pure functions over bytes: nbd_handshake.c and
 * nbd_transmit.c act on what they return, tests/fuzz/fuzz_nbd.c feeds them
 * anything.
 */
#ifndef SPILLWAY_NBD_PARSE_H
#define SPILLWAY_NBD_PARSE_H

#include <stdint.h>

#define NBD_OPT_HDR_LEN 16
#define NBD_REQUEST_LEN 28
#define NBD_NAME_MAX 4096

/* Client flags: 0, or -EPROTO (not fixed newstyle, or unknown flags). */
int nbd_parse_client_flags(uint32_t cf);

/* "IHAVEOPT", option, length: 0, or -EPROTO for a bad magic. */
int nbd_parse_opt_hdr(const uint8_t b[NBD_OPT_HDR_LEN], uint32_t *opt, uint32_t *len);

/* NBD_OPT_INFO / NBD_OPT_GO payload: name length, name, count of info
 * requests, the requests. */
struct nbd_info_req {
	char name[NBD_NAME_MAX + 1];   /* NUL-terminated; no NUL inside */
	uint32_t name_len;
	int want_name;                 /* NBD_INFO_NAME asked for */
};
/* 0, or -EINVAL (malformed lengths, a name over NBD_NAME_MAX) or -ENOENT
 * (a name with a NUL inside: no export has it). */
int nbd_parse_info_req(const uint8_t *p, uint32_t len, struct nbd_info_req *r);

/* NBD_OPT_EXPORT_NAME payload: the whole payload is the name. 0, -EINVAL
 * or -ENOENT as above. */
int nbd_parse_export_name(const uint8_t *p, uint32_t len, char name[NBD_NAME_MAX + 1]);

struct nbd_request {
	uint16_t flags, type;
	uint64_t handle, off;
	uint32_t len;
};
/* A request header: 0, or -EPROTO for a bad magic. */
int nbd_parse_request(const uint8_t b[NBD_REQUEST_LEN], struct nbd_request *r);

/* The NBD error a request gets before anything is done, for an export of
 * size bytes and requests of at most max bytes (the advertised maximum):
 * 0 to serve it. A WRITE's payload must be drained whatever this says. */
uint32_t nbd_request_check(const struct nbd_request *r, uint64_t size, uint32_t max);

#endif
