/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the NBD server: the input is everything a client
 * sends (client flags, options, then transmission requests and their
 * payloads), fed through a socket pair to the real nbd_handshake() and
 * nbd_transmit() (server/nbd/nbd_handshake.c, nbd_transmit.c, nbd_parse.c,
 * nbd_io.c, nbd_buf.c) serving a stub export "d" of 1 MiB held in memory.
 * A helper thread writes the input, then reads and discards the replies
 * until the server closes. Nothing may crash, leak or hang; every transfer
 * buffer must be back when the connection ends; and the pure parsers must
 * keep their promises on every 28-byte window of the input (a request they
 * let through is within the export and the maximum).
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fuzz_check.h"
#include "log.h"
#include "nbd_buf.h"
#include "nbd_conn.h"
#include "nbd_export.h"
#include "nbd_parse.h"
#include "nbd_proto.h"
#include "nbd_stats.h"

#define STUB_SIZE (1u << 20)

/* --- the stub export ---------------------------------------------------- */

struct nbd_export {
	int open;
};
static struct nbd_export stub;
static uint8_t stub_mem[STUB_SIZE];

struct nbd_export_info *nbd_export_list(size_t *n)
{
	static struct nbd_export_info info = { .name = "d" };
	*n = 1;
	return &info;
}

void nbd_export_list_free(struct nbd_export_info *v)
{
	(void)v;
}

struct nbd_export *nbd_export_open(const char *name)
{
	if (strcmp(name, "d"))
		return NULL;
	stub.open++;
	return &stub;
}

void nbd_export_close(struct nbd_export *x)
{
	CHECK(x == &stub && stub.open > 0);
	stub.open--;
}

uint64_t nbd_export_size(const struct nbd_export *x)
{
	(void)x;
	return STUB_SIZE;
}

static void check_range(uint64_t off, uint64_t len)
{
	CHECK(off <= STUB_SIZE && len <= STUB_SIZE - off);
}

int nbd_export_read(struct nbd_export *x, uint64_t off, uint32_t len, uint8_t *buf)
{
	(void)x;
	check_range(off, len);
	CHECK(len <= NBD_BUF_SIZE);
	memcpy(buf, stub_mem + off, len);
	return 0;
}

int nbd_export_write(struct nbd_export *x, uint64_t off, uint32_t len, const uint8_t *buf)
{
	(void)x;
	check_range(off, len);
	CHECK(len <= NBD_BUF_SIZE);
	if (off == 4096 * 7)
		return -ENOSPC; /* one place where the "pool" is full */
	memcpy(stub_mem + off, buf, len);
	return 0;
}

int nbd_export_zero(struct nbd_export *x, uint64_t off, uint64_t len, int alloc)
{
	(void)x;
	(void)alloc;
	check_range(off, len);
	memset(stub_mem + off, 0, len);
	return 0;
}

int nbd_export_trim(struct nbd_export *x, uint64_t off, uint64_t len)
{
	return nbd_export_zero(x, off, len, 0);
}

/* --- the peer ----------------------------------------------------------- */

struct peer {
	int fd;
	const uint8_t *data;
	size_t size;
};

/* Write the input, then read replies until the server closes. */
static void *peer_main(void *arg)
{
	struct peer *p = arg;
	static uint8_t sink[1 << 16];
	size_t sent = 0;
	if (!p->size)
		shutdown(p->fd, SHUT_WR);
	for (;;) {
		struct pollfd pf = { p->fd, POLLIN | (sent < p->size ? POLLOUT : 0), 0 };
		if (poll(&pf, 1, -1) < 0)
			continue;
		if (pf.revents & POLLOUT) {
			ssize_t r = send(p->fd, p->data + sent, p->size - sent,
					 MSG_DONTWAIT | MSG_NOSIGNAL);
			if (r > 0)
				sent += (size_t)r;
			else if (r < 0 && errno != EAGAIN)
				sent = p->size; /* the server is gone */
			if (sent == p->size)
				shutdown(p->fd, SHUT_WR);
		}
		if (pf.revents & (POLLIN | POLLHUP | POLLERR)) {
			ssize_t r = recv(p->fd, sink, sizeof(sink), MSG_DONTWAIT);
			if (r == 0 || (r < 0 && errno != EAGAIN))
				return NULL;
		}
	}
}

/* --- the pure parsers on every window ------------------------------------ */

static void check_parsers(const uint8_t *data, size_t size)
{
	for (size_t i = 0; i + NBD_REQUEST_LEN <= size; i++) {
		struct nbd_request r;
		if (nbd_parse_request(data + i, &r))
			continue;
		uint32_t err = nbd_request_check(&r, STUB_SIZE, NBD_BLOCK_MAX);
		if (!err && (r.type == NBD_CMD_READ || r.type == NBD_CMD_WRITE))
			CHECK(r.len <= NBD_BLOCK_MAX && r.off <= STUB_SIZE &&
			      r.len <= STUB_SIZE - r.off);
		CHECK(err == 0 || err == NBD_EINVAL || err == NBD_ENOSPC);
	}
	struct nbd_info_req q;
	if (size >= 4 && !nbd_parse_info_req(data, (uint32_t)size, &q)) {
		CHECK(q.name_len <= NBD_NAME_MAX && strlen(q.name) == q.name_len);
		CHECK(6 + q.name_len <= size);
	}
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	log_set_level(LOG_ERROR);
	nbd_buf_init(2 * NBD_BUF_SIZE);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check_parsers(data, size);
	int sv[2];
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	struct peer p = { sv[1], data, size };
	pthread_t t;
	CHECK(pthread_create(&t, NULL, peer_main, &p) == 0);
	struct nbd_conn c = { .io = { .fd = sv[0] } };
	snprintf(c.peer, sizeof(c.peer), "fuzz");
	/* Generous limits: the peer always ends the input with EOF. */
	c.io.deadline_ms = nbd_now_ms() + 60000;
	c.stall_ms = 60000;
	struct nbd_export *x = nbd_handshake(&c);
	if (x) {
		nbd_transmit(&c, x);
		nbd_export_close(x);
	}
	close(sv[0]);
	pthread_join(t, NULL);
	close(sv[1]);
	CHECK(stub.open == 0);
	CHECK(atomic_load(&nbd_stats.buffer_bytes) == 0);
	CHECK(c.io.timed_out == NBD_IO_TIMED_OUT_NONE);
	return 0;
}
