// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * /dev/spillway-ctl: the ioctls of spillway_ioctl.h, and an event counter
 * for the resident spillctl (read it; poll says when it moved).
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/capability.h>
#include <linux/fs.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/poll.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include "spill.h"

static DECLARE_WAIT_QUEUE_HEAD(spill_event_wq);
static atomic64_t spill_events = ATOMIC64_INIT(1);

/* Something a resident spillctl may want to react to happened. */
void spill_ctl_event(void)
{
	atomic64_inc(&spill_events);
	wake_up_interruptible_all(&spill_event_wq);
}

struct ctl_file {
	u64 seen;
};

static int ctl_open(struct inode *inode, struct file *f)
{
	struct ctl_file *cf;

	if (!capable(CAP_SYS_ADMIN))
		return -EPERM;
	cf = kzalloc(sizeof(*cf), GFP_KERNEL);
	if (!cf)
		return -ENOMEM;
	f->private_data = cf;
	return 0;
}

static int ctl_release(struct inode *inode, struct file *f)
{
	kfree(f->private_data);
	return 0;
}

static ssize_t ctl_read(struct file *f, char __user *buf, size_t len, loff_t *pos)
{
	struct ctl_file *cf = f->private_data;
	u64 now = atomic64_read(&spill_events);

	if (len < sizeof(now))
		return -EINVAL;
	if (copy_to_user(buf, &now, sizeof(now)))
		return -EFAULT;
	WRITE_ONCE(cf->seen, now);
	return sizeof(now);
}

static __poll_t ctl_poll(struct file *f, poll_table *wait)
{
	struct ctl_file *cf = f->private_data;

	poll_wait(f, &spill_event_wq, wait);
	return READ_ONCE(cf->seen) != atomic64_read(&spill_events) ? EPOLLIN | EPOLLRDNORM : 0;
}

/*
 * The caller learns the new device's index before its disk appears: once
 * it has appeared, udev may open it and removal could fail, leaving a
 * device nobody knows about.
 */
static long ctl_add(void __user *uarg)
{
	struct spill_ioc_add *a = memdup_user(uarg, sizeof(*a));
	struct spill_dev *dev;
	long rc;

	if (IS_ERR(a))
		return PTR_ERR(a);
	dev = spill_dev_create(a);
	if (IS_ERR(dev)) {
		rc = PTR_ERR(dev);
	} else if (copy_to_user(uarg, a, sizeof(*a))) {
		spill_dev_discard(dev);
		rc = -EFAULT;
	} else {
		rc = spill_dev_publish(dev);
	}
	kfree(a);
	if (!rc)
		spill_ctl_event();
	return rc;
}

static long ctl_sock(void __user *uarg)
{
	struct spill_ioc_sock s;
	struct spill_dev *dev;
	long rc;

	if (copy_from_user(&s, uarg, sizeof(s)))
		return -EFAULT;
	mutex_lock(&spill_devs_lock);
	dev = spill_dev_lookup(s.index, s.id);
	rc = dev ? spill_conn_add(dev, &s) : -ENODEV;
	mutex_unlock(&spill_devs_lock);
	return rc;
}

static long ctl_status(void __user *uarg)
{
	struct spill_ioc_status *st;
	struct spill_dev *dev;
	u32 index;
	long rc = 0;

	if (get_user(index, (u32 __user *)uarg))
		return -EFAULT;
	st = kzalloc(sizeof(*st), GFP_KERNEL);
	if (!st)
		return -ENOMEM;
	st->index = index;
	mutex_lock(&spill_devs_lock);
	dev = spill_dev_lookup(index, 0);
	if (dev)
		spill_dev_status(dev, st);
	else
		rc = -ENODEV;
	mutex_unlock(&spill_devs_lock);
	if (!rc && copy_to_user(uarg, st, sizeof(*st)))
		rc = -EFAULT;
	kfree(st);
	return rc;
}

static long ctl_ioctl(struct file *f, unsigned int cmd, unsigned long arg)
{
	void __user *uarg = (void __user *)arg;
	struct spill_ioc_remove rm;

	if (!capable(CAP_SYS_ADMIN))
		return -EPERM;
	switch (cmd) {
	case SPILL_IOC_ADD:
		return ctl_add(uarg);
	case SPILL_IOC_SOCK:
		return ctl_sock(uarg);
	case SPILL_IOC_REMOVE:
		if (copy_from_user(&rm, uarg, sizeof(rm)))
			return -EFAULT;
		return spill_dev_remove(&rm);
	case SPILL_IOC_STATUS:
		return ctl_status(uarg);
	}
	return -ENOTTY;
}

static const struct file_operations ctl_fops = {
	.owner = THIS_MODULE,
	.open = ctl_open,
	.release = ctl_release,
	.read = ctl_read,
	.poll = ctl_poll,
	.unlocked_ioctl = ctl_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.llseek = noop_llseek,
};

static struct miscdevice ctl_misc = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = SPILL_CTL_NAME,
	.fops = &ctl_fops,
	.mode = 0600,
};

int spill_ctl_init(void)
{
	return misc_register(&ctl_misc);
}

void spill_ctl_exit(void)
{
	misc_deregister(&ctl_misc);
}
