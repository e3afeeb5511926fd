/* SPDX-License-Identifier: MIT */
/*
 * Direct system calls for the core library's own I/O.
 *
 * libspillway links the core statically and exports its own read, write,
 * recv, send, readv, writev, pread and pwrite (client/pager/syscall_wrap.c)
 * so that system calls on far buffers work. Any call the core made through
 * those names would be bound, at run time, to whichever definition comes
 * first in the program's symbol scope: the pager's wrapper, or another
 * preloaded library's. The core must not depend on that, so it makes these
 * calls here, through syscall(2), which nothing interposes.
 *
 * Why not link-time binding instead: -Bsymbolic would bind the core's
 * references to the wrapper in the same library (the opposite of what we
 * want), and glibc's internal aliases (__recv, __read) are not an API. An
 * explicit call names exactly which kernel entry is meant and works the same
 * in spillctl, spillwayd and libspillway.
 *
 * Invariant: the core's I/O (streams, frame reader, client, auth) calls none of
 * the names above, nor sendmsg, by its libc name;
 * tests/integration/test_core_syscalls.c checks it.
 * Every function returns what the system call returned, or -errno.
 */
#ifndef SPILLWAY_SYSIO_H
#define SPILLWAY_SYSIO_H

#include <errno.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

static inline ssize_t sysio_result(long r)
{
	return r < 0 ? -errno : (ssize_t)r;
}

static inline ssize_t sysio_read(int fd, void *buf, size_t len)
{
	return sysio_result(syscall(SYS_read, fd, buf, len));
}

static inline ssize_t sysio_recv(int fd, void *buf, size_t len, int flags)
{
	return sysio_result(syscall(SYS_recvfrom, fd, buf, len, flags, NULL, NULL));
}

static inline ssize_t sysio_sendmsg(int fd, const struct msghdr *m, int flags)
{
	return sysio_result(syscall(SYS_sendmsg, fd, m, flags));
}

#endif
