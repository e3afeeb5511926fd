/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * Everything that differs between the kernels spillway.ko builds for.
 *
 * How a block device gets the synchronous swap path (SWP_SYNCHRONOUS_IO:
 * swap-in without the swap cache and without the kernel's readahead):
 *   6.1-6.2   the driver has .rw_page (single-page reads and writes)
 *   6.3-6.10  QUEUE_FLAG_SYNCHRONOUS on the queue (.rw_page is gone)
 *   6.11+     BLK_FEAT_SYNCHRONOUS in queue_limits.features
 * On 6.3+ the flag also makes every swap-out wait for its bio
 * (swap_writepage_bdev_sync): kswapd would pay a network round trip per
 * page, up to io_timeout when a server hangs. So spillway.ko sets it only
 * on 6.1-6.2 (.rw_page, whose writes do not wait), and on 6.3+ swap goes
 * the ordinary asynchronous way: swap cache, the kernel's readahead,
 * asynchronous read and write bios. Building with -DSPILL_SYNCHRONOUS_SWAP
 * (SPILL_SYNC_SWAP) sets the flag on 6.3+ as before.
 * Queue limits: set one by one with blk_queue_*() before 6.9, passed to
 * blk_alloc_disk() from 6.9. Block device open/release take the gendisk
 * and a blk_mode_t from 6.5. The non-rotational flag moved into the
 * features (as BLK_FEAT_ROTATIONAL, off by default) in 6.11.
 *
 * Stable writes (QUEUE_FLAG_STABLE_WRITES; BLK_FEAT_STABLE_WRITES from
 * 6.11): a write's CRC is computed before tcp_sendmsg() copies the page and
 * each copy's server gets its own send, so a page changed while under
 * writeback fails the CRC (the server drops the connection) or leaves the
 * copies different. The page lock does not prevent it: the kernel unlocks
 * a swap page once its write is submitted, not when it ends (6.1's
 * bdev_write_page when .rw_page returns, __swap_writepage before
 * submit_bio; 6.3+'s swap_writepage_bdev_sync before submit_bio_wait).
 * swapon turns the flag into SWP_STABLE_WRITES, which do_swap_page() reads
 * on 6.1 and 6.12 alike: a fault finding its anonymous page under
 * writeback in the swap cache maps it without the exclusive marker, so
 * read-only, and a write then copies it (do_wp_page cannot drop the swap
 * cache of a page under writeback) instead of changing it. Without the
 * flag the page is mapped writable at once. shmem needs no flag:
 * shmem_swapin_folio() waits for writeback.
 */
#ifndef SPILL_COMPAT_H
#define SPILL_COMPAT_H

#include <linux/blkdev.h>
#include <linux/err.h>
#include <linux/uio.h>
#include <linux/version.h>

#if LINUX_VERSION_CODE < KERNEL_VERSION(6, 3, 0)
#define SPILL_HAVE_RW_PAGE 1
#elif defined(SPILL_SYNCHRONOUS_SWAP)
#define SPILL_SYNC_SWAP 1
#endif

/* Renamed from READ/WRITE in 6.2 (and backported to later 6.1.y). */
#ifndef ITER_SOURCE
#define ITER_SOURCE WRITE
#define ITER_DEST READ
#endif

#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 5, 0)
#define SPILL_OPEN_ARGS     struct gendisk *disk, blk_mode_t mode
#define SPILL_OPEN_DISK     disk
#define SPILL_RELEASE_ARGS  struct gendisk *disk
#else
#define SPILL_OPEN_ARGS     struct block_device *bdev, fmode_t mode
#define SPILL_OPEN_DISK     (bdev->bd_disk)
#define SPILL_RELEASE_ARGS  struct gendisk *disk, fmode_t mode
#endif

/*
 * A gendisk with 4 KiB logical and physical blocks, at most max_sectors per
 * request, discard by 4 KiB pages, non-rotational, stable writes, and the
 * synchronous swap path only where SPILL_SYNC_SWAP asks for it (see above).
 */
static inline struct gendisk *spill_alloc_disk(unsigned int max_sectors)
{
	struct gendisk *disk;
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 9, 0)
	struct queue_limits lim = {
		.logical_block_size = PAGE_SIZE,
		.physical_block_size = PAGE_SIZE,
		.io_min = PAGE_SIZE,
		.max_hw_sectors = max_sectors,
		.max_hw_discard_sectors = UINT_MAX,
		.discard_granularity = PAGE_SIZE,
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 11, 0) && defined(SPILL_SYNC_SWAP)
		.features = BLK_FEAT_SYNCHRONOUS,
#endif
	};

#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 11, 0)
	lim.features |= BLK_FEAT_STABLE_WRITES;
#endif
	disk = blk_alloc_disk(&lim, NUMA_NO_NODE);
	if (IS_ERR(disk))
		return disk;
#if LINUX_VERSION_CODE < KERNEL_VERSION(6, 11, 0)
	blk_queue_flag_set(QUEUE_FLAG_STABLE_WRITES, disk->queue);
#endif
#if LINUX_VERSION_CODE < KERNEL_VERSION(6, 11, 0)
#ifdef SPILL_SYNC_SWAP
	blk_queue_flag_set(QUEUE_FLAG_SYNCHRONOUS, disk->queue);
#endif
	blk_queue_flag_set(QUEUE_FLAG_NONROT, disk->queue);
	blk_queue_flag_clear(QUEUE_FLAG_ADD_RANDOM, disk->queue);
#endif
#else
	struct request_queue *q;

	disk = blk_alloc_disk(NUMA_NO_NODE);
	if (!disk)
		return ERR_PTR(-ENOMEM);
	q = disk->queue;
	blk_queue_logical_block_size(q, PAGE_SIZE);
	blk_queue_physical_block_size(q, PAGE_SIZE);
	blk_queue_io_min(q, PAGE_SIZE);
	blk_queue_max_hw_sectors(q, max_sectors);
	blk_queue_max_discard_sectors(q, UINT_MAX);
	q->limits.discard_granularity = PAGE_SIZE;
	blk_queue_flag_set(QUEUE_FLAG_NONROT, q);
	blk_queue_flag_clear(QUEUE_FLAG_ADD_RANDOM, q);
	blk_queue_flag_set(QUEUE_FLAG_STABLE_WRITES, q);
#ifdef SPILL_SYNC_SWAP
	blk_queue_flag_set(QUEUE_FLAG_SYNCHRONOUS, q);
#endif
#endif
	return disk;
}

#endif
