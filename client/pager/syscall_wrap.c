/* SPDX-License-Identifier: MIT */
/*
 * System calls on far buffers, for in-thread fault service. With
 * UFFD_FEATURE_SIGBUS the kernel cannot fault a far page in on a system
 * call's behalf: read(2) into a far buffer would fail with EFAULT. These
 * definitions take the place of libc's for a program linked with
 * libspillway: when the buffer is far they make it resident and pin it for
 * the call (in slices, so a large buffer never needs more than part of the
 * budget), otherwise they go straight to the kernel.
 *
 * Calls that libc makes internally (fread's own reads, for instance) do not
 * come through here; docs/libspillway.md lists what is covered, and handler
 * mode (SPILLWAY_FAULT_MODE=handler) covers everything.
 */
#include <errno.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "pager.h"

#define API __attribute__((visibility("default")))

__thread int spill_in_library;

int sys_munmap(void *addr, size_t len)
{
	return (int)syscall(SYS_munmap, addr, len);
}

/* Is any byte of [a, a+len) far memory of the active context (in any
 * fault mode)? An address, not a pointer: libc declares read's buffer
 * write-only, and looking at where it points is not reading it. */
static spill_ctx *far_any_mode(uintptr_t a, size_t len)
{
	if (spill_in_library)
		return NULL;
	spill_ctx *x = spill_active_ctx;
	if (!x || len == 0)
		return NULL;
	regions_enter(x);
	int hit = 0;
	for (int i = 0; i < x->nregions && !hit; i++) {
		const struct region *r = x->regions[i];
		hit = a < (uintptr_t)r->base + r->npages * PG_SIZE && a + len > (uintptr_t)r->base;
	}
	pthread_rwlock_unlock(&x->regions_lock);
	return hit ? x : NULL;
}

/* Far memory that needs pinning for a system call: in-thread mode only
 * (with handler threads the kernel's own faults are served as usual). */
static spill_ctx *far_addr(uintptr_t a, size_t len)
{
	spill_ctx *x = spill_active_ctx;
	if (!x || x->mode != SPILL_FAULT_INTHREAD)
		return NULL;
	return far_any_mode(a, len);
}

/* The largest slice pinned at once: a quarter of the budget, at most 8 MiB. */
static size_t slice_bytes(spill_ctx *x)
{
	size_t b = (size_t)atomic_load(&x->budget) * PG_SIZE / 4;
	if (b > (8u << 20))
		b = 8u << 20;
	return b < PG_SIZE ? PG_SIZE : b;
}

static int is_regular(int fd)
{
	struct stat st;
	return fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
}

typedef ssize_t (*io_fn)(int fd, void *buf, size_t n, off_t off, int flags);

/*
 * One transfer through pinned slices. into: the kernel writes the buffer.
 * A short transfer ends it, as it would a single call; only regular files
 * continue past the first slice (a pipe or socket returns what it has).
 */
static ssize_t sliced(spill_ctx *x, int fd, void *buf, size_t n, off_t off, int flags,
		      int into, int positioned, io_fn fn)
{
	size_t slice = slice_bytes(x), done = 0;
	int regular = n > slice && is_regular(fd);
	while (done < n) {
		size_t len = n - done < slice ? n - done : slice;
		uint8_t *p = (uint8_t *)buf + done;
		LIB_ENTER();
		int rc = fault_pin(x, p, len, into);
		LIB_LEAVE();
		if (rc) {
			if (done)
				break;
			errno = EFAULT;
			return -1;
		}
		ssize_t r = fn(fd, p, len, positioned ? off + (off_t)done : -1, flags);
		int e = errno;
		spill_in_library = 1;
		fault_unpin(x, p, len);
		LIB_LEAVE();
		errno = e;
		if (r < 0)
			return done ? (ssize_t)done : -1;
		done += (size_t)r;
		if ((size_t)r < len || !regular)
			break;
	}
	return (ssize_t)done;
}

static ssize_t do_read(int fd, void *b, size_t n, off_t off, int flags)
{
	(void)flags;
	return off < 0 ? syscall(SYS_read, fd, b, n) : syscall(SYS_pread64, fd, b, n, off);
}

static ssize_t do_write(int fd, void *b, size_t n, off_t off, int flags)
{
	(void)flags;
	return off < 0 ? syscall(SYS_write, fd, b, n) : syscall(SYS_pwrite64, fd, b, n, off);
}

static ssize_t do_recv(int fd, void *b, size_t n, off_t off, int flags)
{
	(void)off;
	return syscall(SYS_recvfrom, fd, b, n, flags, NULL, NULL);
}

static ssize_t do_send(int fd, void *b, size_t n, off_t off, int flags)
{
	(void)off;
	return syscall(SYS_sendto, fd, b, n, flags, NULL, 0);
}

API ssize_t read(int fd, void *buf, size_t n)
{
	spill_ctx *x = far_addr((uintptr_t)(buf), n);
	return x ? sliced(x, fd, buf, n, 0, 0, 1, 0, do_read) : syscall(SYS_read, fd, buf, n);
}

API ssize_t write(int fd, const void *buf, size_t n)
{
	spill_ctx *x = far_addr((uintptr_t)(buf), n);
	return x ? sliced(x, fd, (void *)buf, n, 0, 0, 0, 0, do_write)
		 : syscall(SYS_write, fd, buf, n);
}

API ssize_t pread(int fd, void *buf, size_t n, off_t off)
{
	spill_ctx *x = far_addr((uintptr_t)(buf), n);
	return x ? sliced(x, fd, buf, n, off, 0, 1, 1, do_read)
		 : syscall(SYS_pread64, fd, buf, n, off);
}

API ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
	spill_ctx *x = far_addr((uintptr_t)(buf), n);
	return x ? sliced(x, fd, (void *)buf, n, off, 0, 0, 1, do_write)
		 : syscall(SYS_pwrite64, fd, buf, n, off);
}

API ssize_t pread64(int fd, void *buf, size_t n, off_t off) __attribute__((alias("pread")));
API ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off) __attribute__((alias("pwrite")));

API ssize_t recv(int fd, void *buf, size_t n, int flags)
{
	spill_ctx *x = far_addr((uintptr_t)(buf), n);
	return x ? sliced(x, fd, buf, n, 0, flags, 1, 0, do_recv)
		 : syscall(SYS_recvfrom, fd, buf, n, flags, NULL, NULL);
}

API ssize_t send(int fd, const void *buf, size_t n, int flags)
{
	spill_ctx *x = far_addr((uintptr_t)(buf), n);
	return x ? sliced(x, fd, (void *)buf, n, 0, flags, 0, 0, do_send)
		 : syscall(SYS_sendto, fd, buf, n, flags, NULL, 0);
}

#define VEC_MAX 64

/* Vectors: pin every far element, then one call. Far vectors too large to
 * pin at once, or too long, move their first element only (a short
 * transfer, which callers of readv/writev must handle anyway). */
static ssize_t vec_io(int fd, const struct iovec *iov, int cnt, int into, long nr)
{
	if (spill_in_library)
		return syscall(nr, fd, iov, cnt);
	spill_ctx *x = spill_active_ctx;
	uint8_t is_far[VEC_MAX];
	int any = 0;
	size_t total = 0;
	if (!x || x->mode != SPILL_FAULT_INTHREAD || cnt <= 0)
		return syscall(nr, fd, iov, cnt);
	for (int i = 0; i < cnt; i++) {
		int f = far_addr((uintptr_t)(iov[i].iov_base), iov[i].iov_len) != NULL;
		if (i < VEC_MAX)
			is_far[i] = (uint8_t)f;
		any |= f;
		total += f ? iov[i].iov_len : 0;
	}
	if (!any)
		return syscall(nr, fd, iov, cnt);
	if (cnt > VEC_MAX || total > slice_bytes(x))
		return into ? read(fd, iov[0].iov_base, iov[0].iov_len)
			    : write(fd, iov[0].iov_base, iov[0].iov_len);
	int pinned = 0, rc = 0;
	LIB_ENTER();
	for (; pinned < cnt && !rc; pinned++)
		if (is_far[pinned])
			rc = fault_pin(x, iov[pinned].iov_base, iov[pinned].iov_len, into);
	if (rc)
		pinned--;
	LIB_LEAVE();
	ssize_t r = -1;
	int e = EFAULT;
	if (!rc) {
		r = syscall(nr, fd, iov, cnt);
		e = errno;
	}
	spill_in_library = 1;
	for (int i = 0; i < pinned; i++)
		if (is_far[i])
			fault_unpin(x, iov[i].iov_base, iov[i].iov_len);
	LIB_LEAVE();
	errno = e;
	return r;
}

API ssize_t readv(int fd, const struct iovec *iov, int cnt)
{
	return vec_io(fd, iov, cnt, 1, SYS_readv);
}

API ssize_t writev(int fd, const struct iovec *iov, int cnt)
{
	return vec_io(fd, iov, cnt, 0, SYS_writev);
}

/* munmap of a far region (or part of one) frees the whole region, in either
 * fault mode, so the library never touches an address range the program
 * may reuse (the evictor would otherwise read whatever is mapped there). */
API int munmap(void *addr, size_t len)
{
	spill_ctx *x = far_any_mode((uintptr_t)(addr), len);
	if (x) {
		LIB_ENTER();
		regions_enter(x);
		struct region *r = region_find(x, addr);
		void *base = r ? r->base : NULL;
		pthread_rwlock_unlock(&x->regions_lock);
		int rc = base ? region_free(x, base) : -1;
		LIB_LEAVE();
		if (rc == 0)
			return 0;
	}
	return (int)syscall(SYS_munmap, addr, len);
}
