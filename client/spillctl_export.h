/* SPDX-License-Identifier: MIT */
/*
 * spillctl export create|list|delete: the NBD exports of a spillwayd started
 * with --nbd. spillctl_export.c parses and sends, spillctl_export_print.c
 * prints.
 */
#ifndef SPILLWAY_SPILLCTL_EXPORT_H
#define SPILLWAY_SPILLCTL_EXPORT_H

#include <stdio.h>

#include "spillway.pb-c.h"

int spillctl_export(int argc, char **argv, const char *server, const char *psk_file, int json);
void export_usage(FILE *out);

void export_print(FILE *out, Spillway__ExportInfo *const *v, size_t n, int json);

#endif
