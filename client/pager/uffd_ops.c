/* SPDX-License-Identifier: MIT */
/* The userfaultfd ioctls the pager uses, and opening the descriptor with the
 * features the chosen fault mode needs. */
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "pager.h"

/* UFFDIO_POISON arrived in Linux 6.6; Debian 12's headers predate it. */
#ifndef UFFD_FEATURE_POISON
#define UFFD_FEATURE_POISON (1 << 14)
#endif
#ifndef UFFDIO_POISON
struct uffdio_poison {
	struct uffdio_range range;
	__u64 mode;
	__s64 updated;
};
#define UFFDIO_POISON _IOWR(UFFDIO, 0x08, struct uffdio_poison)
#endif

int uffd_copy(spill_ctx *x, void *dst, const void *src, size_t len, int wp)
{
	struct uffdio_copy c = { .dst = (uintptr_t)dst, .src = (uintptr_t)src, .len = len,
				 .mode = wp ? UFFDIO_COPY_MODE_WP : 0 };
	while (ioctl(x->uffd, UFFDIO_COPY, &c)) {
		if (errno != EAGAIN)
			return -errno;
		/* Partly done (the mm changed under us): finish the rest. */
		if (c.copy > 0) {
			c.dst += (uint64_t)c.copy;
			c.src += (uint64_t)c.copy;
			c.len -= (uint64_t)c.copy;
		}
		c.copy = 0;
	}
	return 0;
}

int uffd_wp(spill_ctx *x, void *addr, size_t len, int on)
{
	struct uffdio_writeprotect w = { .range = { (uintptr_t)addr, len },
					 .mode = on ? UFFDIO_WRITEPROTECT_MODE_WP : 0 };
	return ioctl(x->uffd, UFFDIO_WRITEPROTECT, &w) ? -errno : 0;
}

int uffd_wake(spill_ctx *x, void *addr, size_t len)
{
	struct uffdio_range r = { (uintptr_t)addr, len };
	return ioctl(x->uffd, UFFDIO_WAKE, &r) ? -errno : 0;
}

int uffd_poison(spill_ctx *x, void *addr, size_t len)
{
	if (!x->has_poison)
		return -ENOTSUP;
	struct uffdio_poison p = { .range = { (uintptr_t)addr, len } };
	if (ioctl(x->uffd, UFFDIO_POISON, &p) && errno != EEXIST)
		return -errno;
	return 0;
}

/* Open the uffd for x->mode. Poison is optional: without it a lost page still
 * raises SIGBUS, by the fault handler's own hand. */
int uffd_open(spill_ctx *x)
{
	int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return -errno;
	uint64_t want = UFFD_FEATURE_PAGEFAULT_FLAG_WP;
	if (x->mode == SPILL_FAULT_INTHREAD)
		want |= UFFD_FEATURE_SIGBUS;
	else
		want |= UFFD_FEATURE_THREAD_ID;
	/* Ask what the kernel has (a first UFFDIO_API with features 0 reports
	 * them), then open for real: the API handshake can be done only once. */
	struct uffdio_api api = { .api = UFFD_API, .features = 0 };
	if (ioctl(fd, UFFDIO_API, &api)) {
		int e = errno;
		close(fd);
		return -e;
	}
	close(fd);
	if ((api.features & want) != want)
		return -ENOTSUP;
	if (api.features & UFFD_FEATURE_POISON)
		want |= UFFD_FEATURE_POISON;
	fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return -errno;
	api = (struct uffdio_api){ .api = UFFD_API, .features = want };
	if (ioctl(fd, UFFDIO_API, &api)) {
		int e = errno;
		close(fd);
		return -e;
	}
	x->has_poison = (want & UFFD_FEATURE_POISON) != 0;
	x->uffd = fd;
	return 0;
}
