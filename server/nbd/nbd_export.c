/* SPDX-License-Identifier: MIT */
#include "nbd_export.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctrl_limits.h"
#include "log.h"
#include "registry.h"
#include "server.h"
#include "wire.h"

/* The protocol stays at the edge (server/wire/): no control message here. */
#ifdef PROTOBUF_C_spillway_2eproto__INCLUDED
#error "protobuf reached this file: convert in server/wire/ instead"
#endif

struct nbd_export {
	char name[CTRL_EXPORT_NAME_MAX + 1];
	uint64_t size;
	struct reg_client *client;
	unsigned nconn;                 /* under the table mutex */
	pthread_rwlock_t lock;          /* the chunk table */
	pthread_mutex_t fill;           /* partial-page writes (see write_pages) */
	uint64_t chunk_bytes;
	uint32_t chunk_pages;
	size_t nchunks;
	atomic_size_t used_chunks;
	struct reg_extent **chunk;      /* one reference each, ours */
	struct nbd_export *next;
};

/* Identities made for exports, with their tokens: a deleted export's identity
 * sits out its grace period, and a new export (or a second one on the same
 * client) joins it with the token rather than being refused the name. */
struct nbd_ident {
	char name[CTRL_NAME_MAX + 1];
	uint8_t token[CTRL_TOKEN_BYTES];
};

static struct {
	pthread_mutex_t lock;
	struct server *srv;
	struct nbd_export *head;
	struct nbd_ident *ids;
	size_t nids;
} T = { .lock = PTHREAD_MUTEX_INITIALIZER };

static const uint8_t zero_page[SPILL_PAGE_SIZE];

void nbd_exports_init(struct server *s)
{
	T.srv = s;
}

static struct nbd_export *find_locked(const char *name)
{
	for (struct nbd_export *x = T.head; x; x = x->next)
		if (!strcmp(x->name, name))
			return x;
	return NULL;
}

static struct nbd_ident *ident_find_locked(const char *name)
{
	for (size_t i = 0; i < T.nids; i++)
		if (!strcmp(T.ids[i].name, name))
			return &T.ids[i];
	return NULL;
}

static int attach_identity_locked(const char *name, struct reg_client **out, const char **why)
{
	struct reg_request req = { 0 };
	snprintf(req.name, sizeof(req.name), "%s", name);
	struct nbd_ident *known = ident_find_locked(name);
	int resumed, rc = -ENOENT;
	if (known) {
		req.has_token = 1;
		memcpy(req.token, known->token, sizeof(req.token));
		rc = registry_register(T.srv->reg, &req, REG_PRINCIPAL_EXPORT, out, &resumed, why);
		req.has_token = 0;
	}
	if (rc == -ENOENT) /* never made, or its grace period ran out */
		rc = registry_register(T.srv->reg, &req, REG_PRINCIPAL_EXPORT, out, &resumed, why);
	if (rc)
		return rc;
	if (!known) {
		struct nbd_ident *v = realloc(T.ids, (T.nids + 1) * sizeof(*v));
		if (!v) {
			registry_disconnect(T.srv->reg, *out);
			return -ENOMEM;
		}
		T.ids = v;
		known = &T.ids[T.nids++];
		snprintf(known->name, sizeof(known->name), "%s", name);
	}
	memcpy(known->token, (*out)->token, sizeof(known->token));
	return 0;
}

int nbd_export_create(const char *name, uint64_t size, const char *client, const char **why)
{
	char cname[CTRL_NAME_MAX + 1];
	if (!T.srv) {
		*why = "NBD is off (start spillwayd with --nbd HOST:PORT)";
		return -EOPNOTSUPP;
	}
	if (client && client[0])
		snprintf(cname, sizeof(cname), "%s", client);
	else
		snprintf(cname, sizeof(cname), "nbd:%s", name);
	struct nbd_export *x = calloc(1, sizeof(*x));
	if (!x)
		return -ENOMEM;
	snprintf(x->name, sizeof(x->name), "%s", name);
	x->size = size;
	x->chunk_bytes = T.srv->opt.extent_size;
	x->chunk_pages = (uint32_t)(x->chunk_bytes / SPILL_PAGE_SIZE);
	x->nchunks = (size_t)((size + x->chunk_bytes - 1) / x->chunk_bytes);
	x->chunk = calloc(x->nchunks, sizeof(*x->chunk));
	if (!x->chunk) {
		free(x);
		return -ENOMEM;
	}
	pthread_rwlock_init(&x->lock, NULL);
	pthread_mutex_init(&x->fill, NULL);
	pthread_mutex_lock(&T.lock);
	int rc = 0;
	if (find_locked(name)) {
		*why = "an export by that name exists";
		rc = -EEXIST;
	} else {
		rc = attach_identity_locked(cname, &x->client, why);
	}
	if (!rc) {
		x->next = T.head;
		T.head = x;
	}
	pthread_mutex_unlock(&T.lock);
	if (rc) {
		pthread_rwlock_destroy(&x->lock);
		pthread_mutex_destroy(&x->fill);
		free(x->chunk);
		free(x);
		return rc;
	}
	log_info("nbd: export '%s' created, %llu bytes, client '%s'", name,
		 (unsigned long long)size, cname);
	return 0;
}

/* Give every chunk back and leave the identity. No connection is attached. */
static void release_export(struct nbd_export *x)
{
	for (size_t i = 0; i < x->nchunks; i++) {
		struct reg_extent *e = x->chunk[i];
		if (!e)
			continue;
		uint64_t id = e->id;
		registry_free(T.srv->reg, x->client, &id, 1);
		registry_extent_put(e);
	}
	registry_disconnect(T.srv->reg, x->client);
	pthread_rwlock_destroy(&x->lock);
	pthread_mutex_destroy(&x->fill);
	free(x->chunk);
	free(x);
}

int nbd_export_delete(const char *name, const char **why)
{
	pthread_mutex_lock(&T.lock);
	struct nbd_export **pp = &T.head, *x;
	while ((x = *pp) && strcmp(x->name, name))
		pp = &x->next;
	int rc = 0;
	if (!x) {
		*why = "no export by that name";
		rc = -ENOENT;
	} else if (x->nconn) {
		*why = "export has NBD connections attached";
		rc = -EBUSY;
	} else {
		*pp = x->next;
		release_export(x);
	}
	pthread_mutex_unlock(&T.lock);
	if (!rc)
		log_info("nbd: export '%s' deleted", name);
	return rc;
}

void nbd_exports_destroy(void)
{
	pthread_mutex_lock(&T.lock);
	while (T.head) {
		struct nbd_export *x = T.head;
		T.head = x->next;
		release_export(x);
	}
	free(T.ids);
	T.ids = NULL;
	T.nids = 0;
	pthread_mutex_unlock(&T.lock);
}

static int info_by_name(const void *a, const void *b)
{
	return strcmp(((const struct nbd_export_info *)a)->name,
		      ((const struct nbd_export_info *)b)->name);
}

struct nbd_export_info *nbd_export_list(size_t *n)
{
	pthread_mutex_lock(&T.lock);
	size_t count = 0;
	for (struct nbd_export *x = T.head; x; x = x->next)
		count++;
	struct nbd_export_info *v = calloc(count ? count : 1, sizeof(*v));
	size_t i = 0;
	for (struct nbd_export *x = T.head; v && x; x = x->next, i++) {
		memcpy(v[i].name, x->name, sizeof(v[i].name));
		memcpy(v[i].client, x->client->name, sizeof(v[i].client));
		v[i].size_bytes = x->size;
		v[i].used_bytes = atomic_load(&x->used_chunks) * x->chunk_bytes;
		v[i].connections = x->nconn;
	}
	pthread_mutex_unlock(&T.lock);
	*n = i;
	/* Sorted by name, as spillctl shows clients. */
	if (v)
		qsort(v, i, sizeof(*v), info_by_name);
	return v;
}

void nbd_export_list_free(struct nbd_export_info *v)
{
	free(v);
}

struct nbd_export *nbd_export_open(const char *name)
{
	pthread_mutex_lock(&T.lock);
	struct nbd_export *x = find_locked(name);
	if (x)
		x->nconn++;
	pthread_mutex_unlock(&T.lock);
	return x;
}

void nbd_export_close(struct nbd_export *x)
{
	pthread_mutex_lock(&T.lock);
	x->nconn--;
	pthread_mutex_unlock(&T.lock);
}

uint64_t nbd_export_size(const struct nbd_export *x)
{
	return x->size;
}

/* --- pages ---------------------------------------------------------------- */

static int present(struct reg_extent *e, uint32_t p)
{
	return (atomic_load_explicit(&e->present[p / 64], memory_order_acquire) >> (p % 64)) & 1;
}

static void set_present(struct reg_extent *e, uint32_t p, int on)
{
	uint64_t bit = 1ull << (p % 64);
	if (on)
		atomic_fetch_or_explicit(&e->present[p / 64], bit, memory_order_release);
	else
		atomic_fetch_and_explicit(&e->present[p / 64], ~bit, memory_order_release);
}

static int chunk_empty(struct nbd_export *x, struct reg_extent *e)
{
	for (uint32_t w = 0; w < (x->chunk_pages + 63) / 64; w++)
		if (atomic_load_explicit(&e->present[w], memory_order_acquire))
			return 0;
	return 1;
}

/* The chunk's extent with the chunk table read-locked (caller unlocks), or
 * NULL (unlocked) with *rc set. alloc: install an extent if there is none. */
static struct reg_extent *chunk_get(struct nbd_export *x, size_t idx, int alloc, int *rc)
{
	*rc = 0;
	for (;;) {
		pthread_rwlock_rdlock(&x->lock);
		struct reg_extent *e = x->chunk[idx];
		if (e || !alloc)
			return e; /* NULL still read-locked: an absent chunk */
		pthread_rwlock_unlock(&x->lock);
		pthread_rwlock_wrlock(&x->lock);
		if (!x->chunk[idx]) {
			struct reg_extent_info info;
			*rc = registry_alloc(T.srv->reg, x->client, 1, -1, &info);
			if (!*rc) {
				rcu_read_lock();
				x->chunk[idx] = registry_extent_get(T.srv->reg, info.id);
				rcu_read_unlock();
				if (x->chunk[idx])
					atomic_fetch_add(&x->used_chunks, 1);
				else
					*rc = -EIO;
			}
		}
		pthread_rwlock_unlock(&x->lock);
		if (*rc)
			return NULL;
	}
}

/* Give a chunk back if no page in it is present any more. */
static void chunk_release_if_empty(struct nbd_export *x, size_t idx)
{
	pthread_rwlock_wrlock(&x->lock);
	struct reg_extent *e = x->chunk[idx];
	if (e && chunk_empty(x, e)) {
		uint64_t id = e->id;
		x->chunk[idx] = NULL;
		atomic_fetch_sub(&x->used_chunks, 1);
		registry_free(T.srv->reg, x->client, &id, 1);
		registry_extent_put(e);
	}
	pthread_rwlock_unlock(&x->lock);
}

/* Call fn for each chunk piece of [off, off + len). */
typedef int (*piece_fn)(struct nbd_export *x, size_t idx, uint32_t at, uint32_t n, void *arg);

static int for_pieces(struct nbd_export *x, uint64_t off, uint64_t len, piece_fn fn, void *arg)
{
	while (len) {
		size_t idx = (size_t)(off / x->chunk_bytes);
		uint32_t at = (uint32_t)(off % x->chunk_bytes);
		uint64_t room = x->chunk_bytes - at;
		uint32_t n = (uint32_t)(len < room ? len : room);
		int rc = fn(x, idx, at, n, arg);
		if (rc)
			return rc;
		off += n;
		len -= n;
		if (arg && *(uint8_t **)arg)
			*(uint8_t **)arg += n;
	}
	return 0;
}

static int read_piece(struct nbd_export *x, size_t idx, uint32_t at, uint32_t n, void *arg)
{
	uint8_t *dst = *(uint8_t **)arg;
	int rc;
	struct reg_extent *e = chunk_get(x, idx, 0, &rc);
	for (uint32_t done = 0; done < n;) {
		uint32_t p = (at + done) / SPILL_PAGE_SIZE, in = (at + done) % SPILL_PAGE_SIZE;
		uint32_t take = SPILL_PAGE_SIZE - in < n - done ? SPILL_PAGE_SIZE - in : n - done;
		if (e && present(e, p))
			memcpy(dst + done, e->block.mem + (size_t)p * SPILL_PAGE_SIZE + in, take);
		else
			memset(dst + done, 0, take);
		done += take;
	}
	pthread_rwlock_unlock(&x->lock);
	return 0;
}

int nbd_export_read(struct nbd_export *x, uint64_t off, uint32_t len, uint8_t *buf)
{
	uint8_t *cur = buf;
	return for_pieces(x, off, len, read_piece, &cur);
}

/* src NULL: zeros. A whole page is written, then marked present. A partial
 * page that is absent must first become a zero page; that and the partial
 * copy happen under the fill mutex, so two connections writing different
 * parts of one absent page cannot zero each other's bytes. */
static int write_piece(struct nbd_export *x, size_t idx, uint32_t at, uint32_t n, void *arg)
{
	const uint8_t *src = *(const uint8_t **)arg;
	int rc;
	struct reg_extent *e = chunk_get(x, idx, 1, &rc);
	if (!e)
		return rc;
	for (uint32_t done = 0; done < n;) {
		uint32_t p = (at + done) / SPILL_PAGE_SIZE, in = (at + done) % SPILL_PAGE_SIZE;
		uint32_t take = SPILL_PAGE_SIZE - in < n - done ? SPILL_PAGE_SIZE - in : n - done;
		uint8_t *page = e->block.mem + (size_t)p * SPILL_PAGE_SIZE;
		const uint8_t *from = src ? src + done : zero_page;
		if (take == SPILL_PAGE_SIZE) {
			memcpy(page, from, SPILL_PAGE_SIZE);
			set_present(e, p, 1);
		} else {
			pthread_mutex_lock(&x->fill);
			if (!present(e, p))
				memset(page, 0, SPILL_PAGE_SIZE);
			memcpy(page + in, from, take);
			set_present(e, p, 1);
			pthread_mutex_unlock(&x->fill);
		}
		done += take;
	}
	pthread_rwlock_unlock(&x->lock);
	return 0;
}

int nbd_export_write(struct nbd_export *x, uint64_t off, uint32_t len, const uint8_t *buf)
{
	const uint8_t *cur = buf;
	return for_pieces(x, off, len, write_piece, &cur);
}

/* Whole pages of the piece become absent; partial ones are written with zeros
 * (zero) or left alone (trim). An emptied chunk goes back to the pool. */
static int punch_piece(struct nbd_export *x, size_t idx, uint32_t at, uint32_t n, int zero)
{
	uint32_t first = (at + SPILL_PAGE_SIZE - 1) / SPILL_PAGE_SIZE;
	uint32_t end = (at + n) / SPILL_PAGE_SIZE;
	int rc;
	struct reg_extent *e = chunk_get(x, idx, 0, &rc);
	if (!e) {
		pthread_rwlock_unlock(&x->lock);
		return 0; /* nothing there: already zeros */
	}
	for (uint32_t p = first; p < end; p++)
		set_present(e, p, 0);
	pthread_rwlock_unlock(&x->lock);
	if (zero) {
		const uint8_t *none = NULL;
		uint32_t head_end = first * SPILL_PAGE_SIZE < at + n ? first * SPILL_PAGE_SIZE : at + n;
		if (head_end > at && (rc = write_piece(x, idx, at, head_end - at, &none)))
			return rc;
		uint32_t tail = end * SPILL_PAGE_SIZE;
		if (end >= first && tail >= head_end && tail < at + n &&
		    (rc = write_piece(x, idx, tail, at + n - tail, &none)))
			return rc;
	}
	chunk_release_if_empty(x, idx);
	return 0;
}

static int trim_piece(struct nbd_export *x, size_t idx, uint32_t at, uint32_t n, void *arg)
{
	(void)arg;
	return punch_piece(x, idx, at, n, 0);
}

static int zero_piece(struct nbd_export *x, size_t idx, uint32_t at, uint32_t n, void *arg)
{
	(void)arg;
	return punch_piece(x, idx, at, n, 1);
}

int nbd_export_trim(struct nbd_export *x, uint64_t off, uint64_t len)
{
	return for_pieces(x, off, len, trim_piece, NULL);
}

int nbd_export_zero(struct nbd_export *x, uint64_t off, uint64_t len, int alloc)
{
	if (alloc) {
		/* NO_HOLE: the zeros must be allocated, so write them. */
		const uint8_t *none = NULL;
		return for_pieces(x, off, len, write_piece, &none);
	}
	return for_pieces(x, off, len, zero_piece, NULL);
}
