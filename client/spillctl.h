/* SPDX-License-Identifier: MIT */
/* spillctl: shared between the command dispatcher and its output formatting. */
#ifndef SPILLWAY_SPILLCTL_H
#define SPILLWAY_SPILLCTL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "spillway.pb-c.h"

/* Human tables or stable JSON for each report. */
void print_status(FILE *out, const Spillway__AdminStatusReply *r, int json);
void print_clients(FILE *out, Spillway__ClientStats *const *c, size_t n, int json);
void print_client(FILE *out, const Spillway__ClientStats *c, int json);
/* "12.0 MiB": binary units, one decimal; plain bytes below 1 KiB. */
void human_size(uint64_t b, char *buf, size_t cap);

#endif
