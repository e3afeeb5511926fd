/* SPDX-License-Identifier: MIT */
/*
 * NBD exports: named block devices whose blocks live in pool extents owned by
 * one registry identity (so its priority, reservation and limit apply).
 *
 * Each export maps 2 MiB chunks (one extent each) to extents, allocated when a
 * chunk is first written and given back when TRIM or WRITE_ZEROES leave it
 * with no page present. Pages never written (or trimmed) read as zeros.
 *
 * Every connection to an export reads and writes the same memory, and a write
 * is in that memory before its reply is sent, so every connection sees every
 * completed write and FLUSH has nothing to do: CAN_MULTI_CONN holds.
 *
 * Locks: the export table has one mutex (create, delete, open, close, list).
 * Each export has a rwlock over its chunk table: reads, writes and trims of
 * pages take it shared; installing or releasing a chunk takes it exclusive.
 * Exports live only as long as the process.
 *
 * Protocol: none. The list is plain structs; server/wire/wire_nbd.c makes
 * control messages of them.
 */
#ifndef SPILLWAY_NBD_EXPORT_H
#define SPILLWAY_NBD_EXPORT_H

#include <stddef.h>
#include <stdint.h>

#include "ctrl_limits.h"

struct server;
struct nbd_export;

void nbd_exports_init(struct server *s);
/* Release every export's memory and identity (no connection may be open). */
void nbd_exports_destroy(void);

/* -EEXIST, -EBUSY (client name held by a non-NBD client), -ENOSPC, -ENOMEM. */
int nbd_export_create(const char *name, uint64_t size, const char *client, const char **why);
/* -ENOENT, -EBUSY (connections attached). */
int nbd_export_delete(const char *name, const char **why);
/* One export as AdminExportList and NBD_OPT_LIST show it. */
struct nbd_export_info {
	char name[CTRL_EXPORT_NAME_MAX + 1];
	char client[CTRL_NAME_MAX + 1];  /* the identity it is accounted to */
	uint64_t size_bytes;
	uint64_t used_bytes;             /* extents held now */
	uint32_t connections;            /* NBD connections attached */
};
/* Snapshot of every export, sorted by name, in one array (*n entries): free
 * with nbd_export_list_free. NULL with *n = 0 when out of memory. */
struct nbd_export_info *nbd_export_list(size_t *n);
void nbd_export_list_free(struct nbd_export_info *v);

/* A connection attaches (NULL: no such export) and detaches. */
struct nbd_export *nbd_export_open(const char *name);
void nbd_export_close(struct nbd_export *x);
uint64_t nbd_export_size(const struct nbd_export *x);

/* Data ops; the range is already checked against the size. 0 or -errno
 * (-ENOSPC when the pool or the identity's limit refuses an extent). */
int nbd_export_read(struct nbd_export *x, uint64_t off, uint32_t len, uint8_t *buf);
int nbd_export_write(struct nbd_export *x, uint64_t off, uint32_t len, const uint8_t *buf);
/* Zeros: whole pages are marked absent (and empty chunks released) unless
 * alloc is set (NBD_CMD_FLAG_NO_HOLE), partial pages are written. */
int nbd_export_zero(struct nbd_export *x, uint64_t off, uint64_t len, int alloc);
/* TRIM: whole pages inside the range become absent; partial pages stay. */
int nbd_export_trim(struct nbd_export *x, uint64_t off, uint64_t len);

#endif
