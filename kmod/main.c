// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * spillway.ko: swap on far memory. Module parameters, load and unload.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/workqueue.h>

#include "spill.h"

/*
 * Every parameter is checked when the module is loaded and on every write
 * to /sys/module/spillway/parameters/: a value out of range is refused
 * (-EINVAL, a message, the old value stays), never clamped.
 */
static int param_set_range(const char *val, const struct kernel_param *kp,
			   unsigned int min, unsigned int max, const char *unit)
{
	unsigned int v;

	if (kstrtouint(val, 0, &v) || v < min || v > max) {
		pr_err("%s must be %u to %u%s\n", kp->name, min, max, unit);
		return -EINVAL;
	}
	WRITE_ONCE(*(unsigned int *)kp->arg, v);
	return 0;
}

/* A kernel_param_ops named NAME_ops for an unsigned int in MIN..MAX. */
#define SPILL_PARAM_RANGE(name, min, max, unit)					\
	static int name##_set(const char *val, const struct kernel_param *kp)	\
	{									\
		return param_set_range(val, kp, min, max, unit);		\
	}									\
	static const struct kernel_param_ops name##_ops = {			\
		.set = name##_set,						\
		.get = param_get_uint,						\
	}

/* At most an hour: x * HZ stays far from wrapping. */
SPILL_PARAM_RANGE(io_timeout, 1, 3600, " seconds");
SPILL_PARAM_RANGE(reconnect_wait, 0, 3600, " seconds");
SPILL_PARAM_RANGE(readahead, 0, SPILL_RA_MAX, " pages");

/* A boolean, refused with a message when it is not one. */
static int param_set_checked_bool(const char *val, const struct kernel_param *kp)
{
	int rc = param_set_bool(val, kp);

	if (rc)
		pr_err("%s must be a boolean (0/1, y/n, on/off)\n", kp->name);
	return rc;
}

static const struct kernel_param_ops bool_ops = {
	.set = param_set_checked_bool,
	.get = param_get_bool,
};

unsigned int spill_io_timeout = 30;
module_param_cb(io_timeout, &io_timeout_ops, &spill_io_timeout, 0644);
MODULE_PARM_DESC(io_timeout, "Seconds a request may wait for its reply before its connection is closed, 1 to 3600 (default 30)");

unsigned int spill_reconnect_wait = 30;
module_param_cb(reconnect_wait, &reconnect_wait_ops, &spill_reconnect_wait, 0644);
MODULE_PARM_DESC(reconnect_wait, "Seconds a read waits for an unreachable server to come back before failing, 0 to 3600 (default 30; writes wait 1 s at most)");

unsigned int spill_readahead = 16;
module_param_cb(readahead, &readahead_ops, &spill_readahead, 0644);
MODULE_PARM_DESC(readahead, "Pages prefetched after sequential swap-ins, 0 to 32 (default 16)");

bool spill_invalidate = true;
module_param_cb(invalidate, &bool_ops, &spill_invalidate, 0644);
MODULE_PARM_DESC(invalidate, "Send INVALIDATE for freed swap slots, boolean (extents of empty chunks are freed either way; default on)");

bool spill_repair = true;
module_param_cb(repair, &bool_ops, &spill_repair, 0644);
MODULE_PARM_DESC(repair, "Copy pages back in the background to a copy that missed them, boolean (default on)");

/*
 * Under memory pressure a workqueue may be left with only its rescuer
 * thread, which runs its works one at a time. The watchdog is the only
 * thing that fails a request whose server went silent, and reclaim work on
 * spill_wq waits for exactly such requests: on one queue, a stuck reclaim
 * work would keep the watchdog from ever firing. So the watchdog has a
 * queue of its own (high priority: its own worker pool too) and only ever
 * takes spinlocks and shuts sockets down; the reaper, which waits for
 * receive threads to exit, has its own as well.
 */
struct workqueue_struct *spill_wq;
struct workqueue_struct *spill_timeout_wq;
struct workqueue_struct *spill_reap_wq;

static int __init spill_init(void)
{
	int rc;

	BUILD_BUG_ON(PAGE_SIZE != SPILL_PAGE_SIZE);
	rc = spill_wire_selftest();
	if (rc) {
		pr_err("crc32c does not compute the wire's CRC-32C\n");
		return rc;
	}
	/* Reclaim may wait on all of them (freeing, timeouts, reaping). */
	rc = -ENOMEM;
	spill_wq = alloc_workqueue("spillway", WQ_MEM_RECLAIM, 0);
	if (!spill_wq)
		return rc;
	spill_timeout_wq = alloc_workqueue("spillway_timeout", WQ_MEM_RECLAIM | WQ_HIGHPRI, 0);
	if (!spill_timeout_wq)
		goto free_wq;
	spill_reap_wq = alloc_workqueue("spillway_reap", WQ_MEM_RECLAIM, 0);
	if (!spill_reap_wq)
		goto free_timeout_wq;
	rc = spill_blk_init();
	if (rc)
		goto free_reap_wq;
	rc = spill_ctl_init();
	if (rc)
		goto blk_exit;
	pr_info("loaded\n");
	return 0;
blk_exit:
	spill_blk_exit();
free_reap_wq:
	destroy_workqueue(spill_reap_wq);
free_timeout_wq:
	destroy_workqueue(spill_timeout_wq);
free_wq:
	destroy_workqueue(spill_wq);
	return rc;
}

static void __exit spill_exit(void)
{
	spill_ctl_exit();
	spill_devs_remove_all();
	spill_blk_exit();
	destroy_workqueue(spill_reap_wq);
	destroy_workqueue(spill_timeout_wq);
	destroy_workqueue(spill_wq);
	pr_info("unloaded\n");
}

module_init(spill_init);
module_exit(spill_exit);

MODULE_LICENSE("Dual MIT/GPL");
MODULE_DESCRIPTION("Spillway: swap on the RAM of remote spillwayd servers");
MODULE_SOFTDEP("pre: crc32c");
