/* SPDX-License-Identifier: MIT */
/*
 * The core library makes its own system calls (lib/sysio.h), never through
 * the libc names libspillway interposes. This program defines those names
 * itself, as libspillway does; being the executable, its definitions win
 * for every call that goes through them, just as the pager's wrappers
 * would. While the core client connects with a key, writes, reads and asks
 * for a status against a real spillwayd, none of them may be entered.
 */
#include <stdatomic.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "harness.h"

static _Atomic int watching;
static _Atomic int entered;
static char first_name[16];

static void note(const char *name)
{
	if (watching && atomic_fetch_add(&entered, 1) == 0)
		snprintf(first_name, sizeof(first_name), "%s", name);
}

/* The interposed names, forwarding to the kernel. */
ssize_t read(int fd, void *b, size_t n)
{
	note("read");
	return syscall(SYS_read, fd, b, n);
}
ssize_t write(int fd, const void *b, size_t n)
{
	note("write");
	return syscall(SYS_write, fd, b, n);
}
ssize_t pread(int fd, void *b, size_t n, off_t off)
{
	note("pread");
	return syscall(SYS_pread64, fd, b, n, off);
}
ssize_t pwrite(int fd, const void *b, size_t n, off_t off)
{
	note("pwrite");
	return syscall(SYS_pwrite64, fd, b, n, off);
}
ssize_t readv(int fd, const struct iovec *v, int n)
{
	note("readv");
	return syscall(SYS_readv, fd, v, n);
}
ssize_t writev(int fd, const struct iovec *v, int n)
{
	note("writev");
	return syscall(SYS_writev, fd, v, n);
}
ssize_t recv(int fd, void *b, size_t n, int flags)
{
	note("recv");
	return syscall(SYS_recvfrom, fd, b, n, flags, NULL, NULL);
}
ssize_t send(int fd, const void *b, size_t n, int flags)
{
	note("send");
	return syscall(SYS_sendto, fd, b, n, flags, NULL, 0);
}
ssize_t sendmsg(int fd, const struct msghdr *m, int flags)
{
	note("sendmsg");
	return syscall(SYS_sendmsg, fd, m, flags);
}

static void core_client_never_enters_interposed_calls(void **state)
{
	(void)state;
	struct srv s;
	srv_write_psk(&s, "a key for the core syscall test");
	assert_int_equal(srv_start(&s, "--capacity", "16M", "--psk-file", s.psk_path, NULL), 0);

	watching = 1;
	struct auth_psk psk;
	assert_int_equal(auth_psk_load(s.psk_path, &psk), 0);
	struct client_opts o = { .psk = &psk, .name = "sysio", .timeout_ms = 20000 };
	struct client *c;
	char err[256];
	int rc = client_connect(s.url, &o, &c, err, sizeof(err));
	struct client_extent e;
	static uint8_t page[SPILL_PAGE_SIZE], back[SPILL_PAGE_SIZE];
	fill_page(page, 7);
	if (!rc)
		rc = client_alloc_extents(c, 1, -1, &e);
	if (!rc)
		rc = client_write(c, e.id, 0, 1, page);
	if (!rc)
		rc = client_read(c, e.id, 0, 1, back, NULL);
	if (!rc)
		rc = client_ping(c);
	client_close(c);
	watching = 0;

	assert_int_equal(rc, 0);
	assert_true(check_page(back, 7));
	if (entered)
		fail_msg("the core called %s() (and %d interposed calls in all)", first_name,
			 (int)entered);
	assert_int_equal(srv_stop(&s), 0);
	unlink(s.psk_path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(core_client_never_enters_interposed_calls),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
