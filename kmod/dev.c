// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * The block devices /dev/spillwayN: creation from SPILL_IOC_ADD, the
 * gendisk and its operations, status, and removal.
 *
 * Creation has two steps: build the device and take an index (the caller
 * tells its user), then add the disk. A device is freed only whole, by
 * dev_free; a failed build unwinds what it did, in reverse order. An index
 * stays taken until its device is freed.
 *
 * Removal refuses an open device (swapoff first). It then stops new opens,
 * deletes the gendisk (no more I/O can start), waits for writes in flight,
 * gives every extent back to the servers, closes the connections and frees
 * the rest.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/blkdev.h>
#include <linux/math64.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/slab.h>
#include <linux/string.h>

#include "spill.h"

#define WATCHDOG_PERIOD HZ

DEFINE_MUTEX(spill_devs_lock);
static struct spill_dev *spill_devs[SPILL_MAX_DEVICES];
/* Indexes taken, from spill_dev_create until the device is freed: a superset
 * of spill_devs[], so a new disk never takes the name of one going away. */
static DECLARE_BITMAP(spill_index_used, SPILL_MAX_DEVICES);
static int spill_major;
static u64 spill_next_id = 1;

static int spill_open(SPILL_OPEN_ARGS)
{
	struct spill_dev *dev = SPILL_OPEN_DISK->private_data;
	int rc = 0;

	spin_lock(&dev->open_lock);
	if (dev->dying)
		rc = -ENXIO;
	else
		dev->opens++;
	spin_unlock(&dev->open_lock);
	return rc;
}

static void spill_release(SPILL_RELEASE_ARGS)
{
	struct spill_dev *dev = disk->private_data;

	spin_lock(&dev->open_lock);
	dev->opens--;
	spin_unlock(&dev->open_lock);
}

/* Called with the swap lock held: must not sleep (map.c defers the work). */
static void spill_slot_free_notify(struct block_device *bdev, unsigned long offset)
{
	spill_map_free_pages(bdev->bd_disk->private_data, offset, 1);
}

static const struct block_device_operations spill_fops = {
	.owner = THIS_MODULE,
	.submit_bio = spill_submit_bio,
	.open = spill_open,
	.release = spill_release,
#ifdef SPILL_HAVE_RW_PAGE
	.rw_page = spill_rw_page,
#endif
	.swap_slot_free_notify = spill_slot_free_notify,
};

static void spill_watchdog(struct work_struct *work)
{
	struct spill_dev *dev = container_of(to_delayed_work(work), struct spill_dev, watchdog);

	spill_conns_check_timeouts(dev);
	queue_delayed_work(spill_timeout_wq, &dev->watchdog, WATCHDOG_PERIOD);
}

static void copy_name(char *dst, const char *src, size_t cap)
{
	size_t n = strnlen(src, cap - 1);

	memcpy(dst, src, n);
	dst[n] = '\0';
}

/*
 * The page-location table costs a state byte per page and a struct
 * spill_chunk per extent. With small extents on a large device the chunks
 * dominate (4 KiB extents on 256 GiB: several GiB): refuse a table larger
 * than the smaller of 1/64 of RAM and TABLE_CAP, unless it is no more than
 * two bytes per page, the order of the kernel's own swap map for the device
 * (what 2 MiB extents cost, up to SPILL_MAX_SIZE).
 */
#define TABLE_CAP (256ull << 20)

static int check_table(const struct spill_ioc_add *a)
{
	u64 npages = a->size / SPILL_PAGE_SIZE;
	u64 nchunks = div64_u64(a->size + a->extent_bytes - 1, a->extent_bytes);
	u64 bytes = npages + nchunks * sizeof(struct spill_chunk);
	u64 limit = min_t(u64, ((u64)totalram_pages() << PAGE_SHIFT) / 64, TABLE_CAP);

	if (bytes <= max(limit, 2 * npages))
		return 0;
	pr_warn("a %llu MiB device with %llu KiB extents needs a %llu MiB page table, more than the %llu MiB allowed (1/64 of RAM, at most %llu MiB): serve it with larger extents\n",
		a->size >> 20, a->extent_bytes >> 10, bytes >> 20, limit >> 20, TABLE_CAP >> 20);
	return -E2BIG;
}

static int check_add(const struct spill_ioc_add *a)
{
	if (!a->size || a->size % SPILL_PAGE_SIZE || a->size > SPILL_MAX_SIZE)
		return -EINVAL;
	if (a->extent_bytes < SPILL_PAGE_SIZE || a->extent_bytes > (1ull << 30) ||
	    !is_power_of_2(a->extent_bytes))
		return -EINVAL;
	if (!a->nservers || a->nservers > SPILL_MAX_SERVERS || !a->replicas ||
	    a->replicas > min_t(u32, a->nservers, SPILL_MAX_REPLICAS) || a->flags)
		return -EINVAL;
	return check_table(a);
}

/* Undo spill_dev_create for a device it fully built. */
static void dev_free(struct spill_dev *dev)
{
	put_disk(dev->disk);
	spill_repair_destroy(dev);
	spill_ra_destroy(dev);
	spill_map_destroy(dev);
	spill_rw_exit(dev);
	kfree(dev);
}

/* Give back an index taken by spill_dev_create, once its disk is gone. */
static void index_release(unsigned int index)
{
	mutex_lock(&spill_devs_lock);
	clear_bit(index, spill_index_used);
	mutex_unlock(&spill_devs_lock);
}

/*
 * The first half of SPILL_IOC_ADD: a device built and given an index and id
 * (in arg), but invisible: no disk in /dev, not in spill_devs[]. The caller
 * tells its user the index, then makes it visible (spill_dev_publish) or
 * drops it (spill_dev_discard); no one else can have opened it meanwhile.
 * Each init function cleans up after its own failure; this unwinds the
 * ones that succeeded, in reverse order.
 */
struct spill_dev *spill_dev_create(struct spill_ioc_add *arg)
{
	struct spill_dev *dev;
	unsigned int i, index;
	int rc;

	rc = check_add(arg);
	if (rc)
		return ERR_PTR(rc);
	dev = kzalloc(sizeof(*dev), GFP_KERNEL);
	if (!dev)
		return ERR_PTR(-ENOMEM);
	copy_name(dev->name, arg->name, sizeof(dev->name));
	dev->size = arg->size;
	dev->npages = arg->size / SPILL_PAGE_SIZE;
	dev->extent_bytes = arg->extent_bytes;
	dev->extent_pages = arg->extent_bytes / SPILL_PAGE_SIZE;
	dev->nchunks = DIV_ROUND_UP_ULL(dev->npages, dev->extent_pages);
	dev->nservers = arg->nservers;
	dev->replicas = arg->replicas;
	dev->last_io = jiffies;
	spin_lock_init(&dev->open_lock);
	spin_lock_init(&dev->conn_lock);
	init_waitqueue_head(&dev->conn_wq);
	init_waitqueue_head(&dev->idle_wq);
	INIT_DELAYED_WORK(&dev->watchdog, spill_watchdog);
	for (i = 0; i < dev->nservers; i++) {
		dev->srv[i].epoch = 1;
		copy_name(dev->srv[i].label, arg->labels[i], sizeof(dev->srv[i].label));
	}
	rc = spill_rw_init(dev);
	if (rc)
		goto free_dev;
	rc = spill_map_init(dev);
	if (rc)
		goto rw_exit;
	spill_migrate_init(dev);
	rc = spill_ra_init(dev);
	if (rc)
		goto map_destroy;
	rc = spill_repair_init(dev);
	if (rc)
		goto ra_destroy;
	dev->disk = spill_alloc_disk(SPILL_MAX_BATCH_PAGES * SPILL_SECTORS_PER_PAGE);
	if (IS_ERR(dev->disk)) {
		rc = PTR_ERR(dev->disk);
		goto repair_destroy;
	}

	mutex_lock(&spill_devs_lock);
	index = find_first_zero_bit(spill_index_used, SPILL_MAX_DEVICES);
	if (index < SPILL_MAX_DEVICES) {
		set_bit(index, spill_index_used);
		dev->index = index;
		dev->id = spill_next_id++;
	}
	mutex_unlock(&spill_devs_lock);
	if (index >= SPILL_MAX_DEVICES) {
		rc = -ENOSPC;
		goto put_disk;
	}
	dev->disk->major = spill_major;
	dev->disk->first_minor = index;
	dev->disk->minors = 1;
	dev->disk->fops = &spill_fops;
	dev->disk->private_data = dev;
	dev->disk->flags |= GENHD_FL_NO_PART;
	snprintf(dev->disk->disk_name, DISK_NAME_LEN, SPILL_DISK_PREFIX "%u", index);
	set_capacity(dev->disk, dev->size >> SECTOR_SHIFT);
	arg->index = index;
	arg->id = dev->id;
	return dev;
put_disk:
	put_disk(dev->disk);
repair_destroy:
	spill_repair_destroy(dev);
ra_destroy:
	spill_ra_destroy(dev);
map_destroy:
	spill_map_destroy(dev);
rw_exit:
	spill_rw_exit(dev);
free_dev:
	kfree(dev);
	return ERR_PTR(rc);
}

/* Drop a device spill_dev_create built and nobody was told about. */
void spill_dev_discard(struct spill_dev *dev)
{
	unsigned int index = dev->index;

	dev_free(dev);
	index_release(index);
}

/* The second half of SPILL_IOC_ADD: the disk appears. Frees dev on failure. */
int spill_dev_publish(struct spill_dev *dev)
{
	int rc;

	rc = device_add_disk(NULL, dev->disk, spill_sysfs_groups);
	if (rc) {
		spill_dev_discard(dev);
		return rc;
	}
	mutex_lock(&spill_devs_lock);
	spill_devs[dev->index] = dev;
	queue_delayed_work(spill_timeout_wq, &dev->watchdog, WATCHDOG_PERIOD);
	mutex_unlock(&spill_devs_lock);
	dev_info(disk_to_dev(dev->disk), "%s, %llu MiB, %u server(s), %u cop%s, %llu KiB extents\n",
		 dev->name, dev->size >> 20, dev->nservers, dev->replicas,
		 dev->replicas == 1 ? "y" : "ies", dev->extent_bytes >> 10);
	return 0;
}

static void dev_destroy(struct spill_dev *dev)
{
	unsigned int index = dev->index;

	del_gendisk(dev->disk);
	/* No new I/O from here; wait for writes and prefetches in flight. */
	wait_event(dev->idle_wq, !atomic_read(&dev->active));
	cancel_delayed_work_sync(&dev->reclaim_work);
	spill_repair_stop(dev);
	spill_migrate_stop(dev);
	/*
	 * The background work may have left FREEs and ALLOCs in flight (they
	 * complete from receive threads and may still change the chunks and
	 * the list of extents to free): let them end before the last walk.
	 */
	wait_event(dev->idle_wq, !atomic_read(&dev->active));
	spill_map_release(dev);
	spill_conns_stop(dev);
	/* A receive thread may have kicked a move just before dying was seen
	 * (notify.c): with every thread gone, nothing can queue one again. */
	spill_migrate_stop(dev);
	cancel_delayed_work_sync(&dev->watchdog);
	wait_event(dev->idle_wq, !atomic_read(&dev->active));
	dev_free(dev);
	/* Only now may a new device take the index (and the disk's name). */
	index_release(index);
	pr_info("spillway%u removed\n", index);
	spill_ctl_event();
}

/* The device with this index (and id, unless 0). spill_devs_lock held. */
struct spill_dev *spill_dev_lookup(unsigned int index, u64 id)
{
	struct spill_dev *dev;

	if (index >= SPILL_MAX_DEVICES)
		return NULL;
	dev = spill_devs[index];
	return dev && (!id || dev->id == id) ? dev : NULL;
}

int spill_dev_remove(const struct spill_ioc_remove *arg)
{
	struct spill_dev *dev;
	int rc = 0;

	if (arg->flags)
		return -EINVAL;
	mutex_lock(&spill_devs_lock);
	dev = spill_dev_lookup(arg->index, arg->id);
	if (!dev) {
		mutex_unlock(&spill_devs_lock);
		return -ENODEV;
	}
	spin_lock(&dev->open_lock);
	if (dev->opens)
		rc = -EBUSY;
	else
		WRITE_ONCE(dev->dying, true);
	spin_unlock(&dev->open_lock);
	if (!rc)
		spill_devs[arg->index] = NULL;
	mutex_unlock(&spill_devs_lock);
	if (!rc)
		dev_destroy(dev);
	return rc;
}

void spill_devs_remove_all(void)
{
	unsigned int i;

	for (i = 0; i < SPILL_MAX_DEVICES; i++) {
		struct spill_dev *dev;

		mutex_lock(&spill_devs_lock);
		dev = spill_devs[i];
		spill_devs[i] = NULL;
		if (dev)
			WRITE_ONCE(dev->dying, true);
		mutex_unlock(&spill_devs_lock);
		if (dev)
			dev_destroy(dev);
	}
}

void spill_dev_status(struct spill_dev *dev, struct spill_ioc_status *st)
{
	unsigned int i;

	st->id = dev->id;
	st->flags = READ_ONCE(dev->dying) ? SPILL_STATUS_DYING : 0;
	memcpy(st->name, dev->name, sizeof(st->name));
	st->size = dev->size;
	st->extent_bytes = dev->extent_bytes;
	st->nservers = dev->nservers;
	st->replicas = dev->replicas;
	spin_lock(&dev->open_lock);
	st->opens = dev->opens;
	spin_unlock(&dev->open_lock);
	spin_lock(&dev->map_lock);
	st->pages_remote = dev->used_pages;
	spin_unlock(&dev->map_lock);
	st->reads = atomic64_read(&dev->st.reads);
	st->writes = atomic64_read(&dev->st.writes);
	st->zero_reads = atomic64_read(&dev->st.zero_reads);
	st->read_errors = atomic64_read(&dev->st.read_errors);
	st->write_errors = atomic64_read(&dev->st.write_errors);
	st->failovers = atomic64_read(&dev->st.failovers);
	st->degraded_writes = atomic64_read(&dev->st.degraded_writes);
	st->pages_freed = atomic64_read(&dev->st.pages_freed);
	st->invalidates = atomic64_read(&dev->st.invalidates);
	st->extents_allocated = atomic64_read(&dev->st.extents_allocated);
	st->extents_freed = atomic64_read(&dev->st.extents_freed);
	st->ra_pages = atomic64_read(&dev->st.ra_pages);
	st->ra_hits = atomic64_read(&dev->st.ra_hits);
	for (i = 0; i < dev->nservers; i++) {
		struct spill_server *srv = &dev->srv[i];
		struct spill_srv_status *o = &st->srv[i];

		memcpy(o->label, srv->label, sizeof(o->label));
		o->conns = spill_server_conns(dev, i, &o->epoch);
		o->sockets_added = atomic64_read(&srv->sockets_added);
		o->reconnects = atomic64_read(&srv->reconnects);
		o->conn_failures = atomic64_read(&srv->conn_failures);
		o->resets = atomic64_read(&srv->resets);
		o->io_errors = atomic64_read(&srv->io_errors);
		o->extents = atomic64_read(&srv->extents);
	}
}

int spill_blk_init(void)
{
	spill_major = register_blkdev(0, SPILL_DISK_PREFIX);
	return spill_major < 0 ? spill_major : 0;
}

void spill_blk_exit(void)
{
	unregister_blkdev(spill_major, SPILL_DISK_PREFIX);
}
