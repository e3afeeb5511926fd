/* SPDX-License-Identifier: MIT */
/*
 * NBD exports in the control protocol: struct nbd_export_info
 * (nbd_export.h) as ExportInfo messages. The messages borrow their strings
 * from the plain structs, which must outlive them.
 */
#ifndef SPILLWAY_WIRE_NBD_H
#define SPILLWAY_WIRE_NBD_H

#include <stddef.h>

#include "nbd_export.h"
#include "spillway.pb-c.h"

/* One export -> *out (borrowing x's strings). */
void wire_nbd_export(const struct nbd_export_info *x, Spillway__ExportInfo *out);
/* n exports -> the repeated field of a reply, in one allocation
 * (wire_list.h): free() it. NULL only when out of memory. */
Spillway__ExportInfo **wire_nbd_export_list(const struct nbd_export_info *v, size_t n);

#endif
