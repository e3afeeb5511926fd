/* SPDX-License-Identifier: MIT */
/*
 * spillctl swap: attach far memory as a swap device through spillway.ko,
 * stay resident to reconnect, detach, report. Shared between
 * spillctl_swap.c (commands), spillctl_swap_conn.c (connections handed to
 * the module), spillctl_swap_daemon.c (the resident loop) and
 * spillctl_swap_print.c (status output).
 */
#ifndef SPILLWAY_SPILLCTL_SWAP_H
#define SPILLWAY_SPILLCTL_SWAP_H

#include <stdint.h>
#include <stdio.h>

#include "auth.h"
#include "ctrl.h"
#include "../kmod/spillway_ioctl.h" /* the module's ioctls */

#define SWAP_CTL_PATH "/dev/" SPILL_CTL_NAME

struct swap_server {
	const char *url;
	uint8_t token[CTRL_TOKEN_BYTES];
	int have_token;
	int need_reset;      /* registered afresh: the next socket resets the module's view */
	unsigned window;
	double next_try;     /* resident: monotonic time of the next reconnect attempt */
	double backoff;
};

struct swap_attach {
	struct swap_server srv[SPILL_MAX_SERVERS];
	unsigned nservers, replicas, conns;
	uint64_t size, extent_bytes;
	char name[CTRL_NAME_MAX + 1];
	const struct auth_psk *psk;
	int foreground;
	int swapon;          /* mkswap + swapon after attaching */
	int swap_prio;       /* -1: kernel default */
	int priority;        /* asked at Register (--priority; 0 by default) */
	int ctl;             /* open /dev/spillway-ctl, -1 before the device exists */
	uint32_t index;
	uint64_t id;
	char dev_path[64];
};

/* spillctl_swap.c */
int spillctl_swap(int argc, char **argv, const char *server, const char *psk_file, int json);
void swap_usage(FILE *out);

/* spillctl_swap_conn.c */
int swap_ctl_open(int load_module);
int swap_lock(const char *name);
/* Connect and register with server i, hand the socket to the module.
 * flags: SPILL_SOCK_RECONNECT or 0. 0 or -errno (err says why). */
int swap_add_connection(struct swap_attach *a, unsigned i, uint32_t flags, int fresh_device,
			char *err, size_t cap);
int swap_status(int ctl, uint32_t index, struct spill_ioc_status *st);

/* spillctl_swap_daemon.c */
int swap_resident(struct swap_attach *a);

/* spillctl_swap_print.c */
void swap_print(FILE *out, const struct spill_ioc_status *st, size_t n, int json);

#endif
