/* SPDX-License-Identifier: MIT */
/*
 * The usual RDMA setup traps, each turned into one sentence that says what
 * to do: no device, a port that is down, RLIMIT_MEMLOCK too low for the
 * memory to register. Each function returns 0 or -errno and fills why.
 */
#ifndef SPILLWAY_RDMA_CHECK_H
#define SPILLWAY_RDMA_CHECK_H

#include <stddef.h>
#include <stdint.h>

struct ibv_context;

/* Is there any RDMA device at all? */
int rdma_check_devices(char *why, size_t cap);
/* Is port of ctx ACTIVE? *mtu gets its active MTU in bytes (never assumed). */
int rdma_check_port(struct ibv_context *ctx, uint8_t port, int *mtu, char *why, size_t cap);
/* May this process pin need more bytes (CAP_IPC_LOCK or RLIMIT_MEMLOCK)? */
int rdma_check_memlock(size_t need, char *why, size_t cap);
/* Explain a failed ibv_reg_mr of bytes (err is its errno). */
void rdma_explain_reg_failure(int err, size_t bytes, char *why, size_t cap);
/* Explain why an address could not be bound or resolved to an RDMA device. */
void rdma_explain_addr_failure(int err, const char *host, char *why, size_t cap);

#endif
