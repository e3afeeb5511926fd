/* SPDX-License-Identifier: MIT */
/*
 * A far page's life, in one place: the states its word can be in, and every
 * transition between them, named. Each transition takes the word of a page
 * the caller has claimed (BUSY), as read at or after the claim, and returns
 * the word to publish with pte_release() (which drops BUSY and WAIT); its
 * precondition is asserted in debug builds. The flag-only updates of pages
 * nobody claimed (LRU bits, pins, advice) are named here too. Claiming,
 * releasing and waiting on BUSY are pte.c's; nothing else changes a page
 * word by hand.
 *
 * States (by RES, DIRTY, REMOTE, LOST; WP follows DIRTY):
 *   EMPTY  !RES !REMOTE        never written, or dropped: a fault fills zeros
 *   FAR    !RES  REMOTE        only on servers: a fault fetches a current copy
 *   CLEAN   RES !DIRTY  WP     resident, the same bytes as its current copies
 *                              (or zeros); evicted with no write if one is
 *                              current on a live server
 *   DIRTY   RES  DIRTY         resident, newer than every remote copy
 *   LOST    LOST               no copy left anywhere: SIGBUS on every touch
 * Transitions:
 *   EMPTY|FAR -> CLEAN/DIRTY   pte_fetched, pte_zero_filled
 *   CLEAN -> DIRTY             pte_write_enabled; pte_copies_released and
 *                              pte_copy_dropped when its copies go
 *   CLEAN/DIRTY -> EMPTY|FAR   pte_evicted; pte_evict_aborted keeps it DIRTY
 *   RES -> RES, EMPTY bytes    pte_refilled_zeros (the program dropped it)
 *   FAR -> LOST                pte_lost
 * Modifiers: BUSY (claimed: a transition is under way), WAIT (someone sleeps
 * on BUSY), REF/ACTIVE/PREF (eviction order, prefetch accounting), COLD
 * (advice), pins (system calls using the page).
 */
#ifndef SPILL_PAGE_STATE_H
#define SPILL_PAGE_STATE_H

#include <assert.h>
#include <stdatomic.h>
#include <stdint.h>

enum {
	PTE_RES    = 1u << 0,  /* mapped locally                              */
	PTE_DIRTY  = 1u << 1,  /* local bytes newer than any remote copy      */
	PTE_REMOTE = 1u << 2,  /* a copy lives in the chunk's extents, at the
				* page's slot (gpn & 511)                     */
	PTE_BUSY   = 1u << 3,  /* being fetched, written back or dropped      */
	PTE_REF    = 1u << 4,  /* referenced since it was last looked at      */
	PTE_LOST   = 1u << 5,  /* no readable copy is left: SIGBUS on access  */
	PTE_WAIT   = 1u << 6,  /* someone sleeps until BUSY clears            */
	PTE_PREF   = 1u << 7,  /* installed by prefetch, not yet walked over  */
	PTE_ACTIVE = 1u << 8,  /* on the active list (else inactive)          */
	PTE_COLD   = 1u << 9,  /* advised cold: evict first                   */
	PTE_WP     = 1u << 10, /* write-protected in the page tables          */
};
#define PTE_PIN_SHIFT 16       /* bits 16..31: pins held by system calls   */
#define PTE_PIN_ONE   (1ull << PTE_PIN_SHIFT)
#define PTE_PIN_MASK  (0xffffull << PTE_PIN_SHIFT)

/* --- transitions of a claimed page (old: the word at the claim) ----------- */

/* How a fetched page is installed. */
enum pte_fetch_role {
	PTE_FETCH_AHEAD,    /* fetched along with a fault: not referenced yet */
	PTE_FETCH_FAULTED,  /* the page the program touched                   */
	PTE_FETCH_WRITTEN,  /* the page the program writes (installed writable) */
};

/* EMPTY|FAR -> CLEAN (DIRTY when written): read from a server (or zeros). */
static inline uint64_t pte_fetched(uint64_t old, enum pte_fetch_role role)
{
	assert(!(old & (PTE_RES | PTE_LOST)));
	uint64_t w = (old | PTE_RES | PTE_WP) & ~(uint64_t)(PTE_DIRTY | PTE_REF | PTE_ACTIVE | PTE_PREF);
	if (role == PTE_FETCH_AHEAD)
		return w | PTE_PREF;
	w |= PTE_REF;
	return role == PTE_FETCH_WRITTEN ? (w | PTE_DIRTY) & ~(uint64_t)PTE_WP : w;
}

/* EMPTY -> CLEAN (DIRTY when written): never written, zeros installed. */
static inline uint64_t pte_zero_filled(uint64_t old, int written)
{
	assert(!(old & (PTE_RES | PTE_REMOTE | PTE_LOST)));
	return (old | PTE_RES | PTE_REF | (written ? PTE_DIRTY : PTE_WP)) &
	       ~(uint64_t)(PTE_PREF | PTE_ACTIVE);
}

/* CLEAN -> DIRTY: the first write lifted the write protection. */
static inline uint64_t pte_write_enabled(uint64_t old)
{
	assert(old & PTE_RES);
	return (old | PTE_DIRTY | PTE_REF) & ~(uint64_t)(PTE_WP | PTE_PREF);
}

/* RES -> RES holding zeros: the program dropped the page (MADV_DONTNEED);
 * its remote copies no longer count. */
static inline uint64_t pte_refilled_zeros(uint64_t old, int wp)
{
	assert(old & PTE_RES);
	return (old & ~(uint64_t)(PTE_REMOTE | PTE_DIRTY | PTE_WP)) | (wp ? PTE_WP : PTE_DIRTY);
}

/* FAR -> LOST: no current copy could be read. */
static inline uint64_t pte_lost(uint64_t old)
{
	assert(!(old & PTE_RES));
	return (old & ~(uint64_t)(PTE_REMOTE | PTE_DIRTY)) | PTE_LOST;
}

/* CLEAN/DIRTY -> FAR (written: a replica took its bytes, or it already had
 * a current copy) or EMPTY (never written: it was zeros). */
static inline uint64_t pte_evicted(uint64_t old, int written)
{
	assert(old & PTE_RES);
	uint64_t w = old & ~(uint64_t)(PTE_RES | PTE_DIRTY | PTE_WP | PTE_REF | PTE_ACTIVE |
				       PTE_PREF | PTE_COLD);
	return written ? w | PTE_REMOTE : w;
}

/* CLEAN/DIRTY -> DIRTY: no replica took it; it stays, write-protected. */
static inline uint64_t pte_evict_aborted(uint64_t old)
{
	assert(old & PTE_RES);
	return old | PTE_WP | PTE_DIRTY;
}

/* CLEAN -> DIRTY: the group's extents are freed (reclaim), so its remote
 * copy is gone and eviction must write it again. Other states unchanged. */
static inline uint64_t pte_copies_released(uint64_t old)
{
	if (!(old & PTE_REMOTE))
		return old;
	assert(old & PTE_RES);
	return (old & ~(uint64_t)PTE_REMOTE) | PTE_DIRTY;
}

/* --- flag updates of pages nobody claimed (w: the page's word) ------------ */

/* CLEAN -> DIRTY for a resident, unclaimed page whose remote copy went away
 * (a revoked extent): eviction then writes it instead of dropping it. A
 * claimed page is left to its claimer. */
static inline void pte_copy_dropped(_Atomic uint64_t *w)
{
	uint64_t o = atomic_load(w);
	while ((o & (PTE_RES | PTE_REMOTE)) == (PTE_RES | PTE_REMOTE) &&
	       !(o & (PTE_BUSY | PTE_DIRTY)) && !atomic_compare_exchange_weak(w, &o, o | PTE_DIRTY))
		;
}

/* Eviction order (lru.c): forget a reference, leave or join the active list. */
static inline void pte_order_clear(_Atomic uint64_t *w, uint64_t flags)
{
	assert(!(flags & ~(uint64_t)(PTE_REF | PTE_ACTIVE)));
	atomic_fetch_and(w, ~flags);
}

static inline void pte_activate(_Atomic uint64_t *w)
{
	atomic_fetch_or(w, PTE_ACTIVE);
}

/* A prefetched page the program walked over: referenced now. */
static inline void pte_prefetch_consumed(_Atomic uint64_t *w)
{
	atomic_fetch_and(w, ~(uint64_t)PTE_PREF);
	atomic_fetch_or(w, PTE_REF);
}

/* Advised cold: evicted first. */
static inline void pte_mark_cold(_Atomic uint64_t *w)
{
	atomic_fetch_or(w, PTE_COLD);
}

/* Pin a resident page against eviction (writable if write): 1, or 0 when
 * it is not resident, busy, write-protected for a write, or pinned to the
 * limit. */
static inline int pte_try_pin(_Atomic uint64_t *w, int write)
{
	uint64_t o = atomic_load(w);
	for (;;) {
		if (!(o & PTE_RES) || (o & PTE_BUSY) || (write && (o & PTE_WP)) ||
		    (o & PTE_PIN_MASK) == PTE_PIN_MASK)
			return 0;
		if (atomic_compare_exchange_weak(w, &o, o + PTE_PIN_ONE))
			return 1;
	}
}

/* The region is freed (no fault or eviction runs): the next owner of the
 * page number starts EMPTY. */
static inline void pte_forget(_Atomic uint64_t *w)
{
	atomic_store(w, 0);
}

static inline void pte_unpin(_Atomic uint64_t *w)
{
	assert(atomic_load(w) & PTE_PIN_MASK);
	atomic_fetch_sub(w, PTE_PIN_ONE);
}

#endif
