// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * Statistics in sysfs, as zram has them: /sys/block/spillwayN/spillway/,
 * one read-only file per counter of struct spill_stats holding one decimal
 * number, pages_remote, extents_used and degraded_pages, and "servers": one line per
 * server (docs/swap.md, "Statistics in sysfs", lists them all; tests read
 * these names).
 *
 * The group is added with the disk and removed by del_gendisk, before the
 * device is freed: a show function always finds its device whole. Nothing
 * here writes; the only walk (pages per server) takes map_lock one chunk
 * at a time and reschedules between chunks.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/blkdev.h>
#include <linux/device.h>
#include <linux/sched.h>
#include <linux/sysfs.h>

#include "spill.h"

static struct spill_dev *to_spill(struct device *d)
{
	return dev_to_disk(d)->private_data;
}

#define STAT_ATTR(name)								\
	static ssize_t name##_show(struct device *d, struct device_attribute *attr, \
				   char *buf)					\
	{									\
		return sysfs_emit(buf, "%llu\n",				\
				  (u64)atomic64_read(&to_spill(d)->st.name));	\
	}									\
	static DEVICE_ATTR_RO(name)

STAT_ATTR(reads);
STAT_ATTR(writes);
STAT_ATTR(zero_reads);
STAT_ATTR(read_errors);
STAT_ATTR(write_errors);
STAT_ATTR(failovers);
STAT_ATTR(degraded_writes);
STAT_ATTR(pages_freed);
STAT_ATTR(invalidates);
STAT_ATTR(extents_allocated);
STAT_ATTR(extents_freed);
STAT_ATTR(ra_pages);
STAT_ATTR(ra_hits);
STAT_ATTR(fenced_writes);
STAT_ATTR(timeouts);
STAT_ATTR(repairs);
STAT_ATTR(fast_fails);
STAT_ATTR(read_fallbacks);
STAT_ATTR(migrated);

/* Pages with data on the device (any copy), as SPILL_IOC_STATUS says. */
static ssize_t pages_remote_show(struct device *d, struct device_attribute *attr, char *buf)
{
	struct spill_dev *dev = to_spill(d);
	u64 n;

	spin_lock(&dev->map_lock);
	n = dev->used_pages;
	spin_unlock(&dev->map_lock);
	return sysfs_emit(buf, "%llu\n", n);
}
static DEVICE_ATTR_RO(pages_remote);

/* Extents the device holds on its servers, in their current sessions. */
static ssize_t extents_used_show(struct device *d, struct device_attribute *attr, char *buf)
{
	struct spill_dev *dev = to_spill(d);
	unsigned int s;
	u64 n = 0;

	for (s = 0; s < dev->nservers; s++)
		n += atomic64_read(&dev->srv[s].extents);
	return sysfs_emit(buf, "%llu\n", n);
}
static DEVICE_ATTR_RO(extents_used);

/* Written pages that lack one of their copies now (repair.c brings them back). */
static ssize_t degraded_pages_show(struct device *d, struct device_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%llu\n", spill_repair_degraded(to_spill(d)));
}
/* A walk of the whole table: root only, so nobody can make it a busy loop. */
static DEVICE_ATTR_ADMIN_RO(degraded_pages);

/*
 * pages[s]: pages whose current data has a copy on server s. Copy r of
 * chunk c lives on spill_copy_server(dev, c, r); it counts only if its
 * extent belongs to the server's current session.
 */
static void count_server_pages(struct spill_dev *dev, const u32 *epoch, u64 *pages)
{
	u32 c;

	for (c = 0; c < dev->nchunks; c++) {
		struct spill_chunk *ch = &dev->chunks[c];
		u64 p, first = (u64)c * dev->extent_pages;
		u64 end = min_t(u64, first + dev->extent_pages, dev->npages);
		unsigned int r, live = 0;

		spin_lock(&dev->map_lock);
		for (r = 0; r < dev->replicas; r++)
			if (ch->epoch[r] &&
			    ch->epoch[r] == epoch[spill_copy_server(dev, c, r)])
				live |= BIT(r);
		for (p = first; live && p < end; p++) {
			u8 st = dev->pstate[p];

			if (!(st & PS_DATA))
				continue;
			for (r = 0; r < dev->replicas; r++)
				if (st & live & BIT(r))
					pages[spill_copy_server(dev, c, r)]++;
		}
		spin_unlock(&dev->map_lock);
		cond_resched();
	}
}

/* index label state conns epoch extents pages io_errors resets conn_failures
 * draining (the last: "draining" or "-") */
static ssize_t servers_show(struct device *d, struct device_attribute *attr, char *buf)
{
	struct spill_dev *dev = to_spill(d);
	unsigned int conns[SPILL_MAX_SERVERS];
	u64 pages[SPILL_MAX_SERVERS] = {};
	u32 epoch[SPILL_MAX_SERVERS];
	ssize_t len = 0;
	unsigned int s;

	for (s = 0; s < dev->nservers; s++)
		conns[s] = spill_server_conns(dev, s, &epoch[s]);
	count_server_pages(dev, epoch, pages);
	for (s = 0; s < dev->nservers; s++) {
		struct spill_server *srv = &dev->srv[s];

		len += sysfs_emit_at(buf, len, "%u %s %s %u %u %lld %llu %lld %lld %lld %s\n",
				     s, srv->label[0] ? srv->label : "-",
				     conns[s] ? "up" : "down", conns[s], epoch[s],
				     (long long)atomic64_read(&srv->extents), pages[s],
				     (long long)atomic64_read(&srv->io_errors),
				     (long long)atomic64_read(&srv->resets),
				     (long long)atomic64_read(&srv->conn_failures),
				     READ_ONCE(srv->draining) ? "draining" : "-");
	}
	return len;
}
static DEVICE_ATTR_ADMIN_RO(servers); /* walks the table, as degraded_pages */

static struct attribute *spill_attrs[] = {
	&dev_attr_reads.attr,
	&dev_attr_writes.attr,
	&dev_attr_zero_reads.attr,
	&dev_attr_read_errors.attr,
	&dev_attr_write_errors.attr,
	&dev_attr_failovers.attr,
	&dev_attr_degraded_writes.attr,
	&dev_attr_pages_freed.attr,
	&dev_attr_invalidates.attr,
	&dev_attr_extents_allocated.attr,
	&dev_attr_extents_freed.attr,
	&dev_attr_ra_pages.attr,
	&dev_attr_ra_hits.attr,
	&dev_attr_fenced_writes.attr,
	&dev_attr_timeouts.attr,
	&dev_attr_repairs.attr,
	&dev_attr_fast_fails.attr,
	&dev_attr_read_fallbacks.attr,
	&dev_attr_migrated.attr,
	&dev_attr_pages_remote.attr,
	&dev_attr_extents_used.attr,
	&dev_attr_degraded_pages.attr,
	&dev_attr_servers.attr,
	NULL,
};

static const struct attribute_group spill_attr_group = {
	.name = "spillway",
	.attrs = spill_attrs,
};

const struct attribute_group *spill_sysfs_groups[] = {
	&spill_attr_group,
	NULL,
};
