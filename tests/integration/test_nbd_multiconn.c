/* SPDX-License-Identifier: MIT */
/*
 * CAN_MULTI_CONN holds: a write completed on one connection is read back on
 * every other; two connections writing alternate 512-byte sectors of the same
 * never-written pages at the same time lose none of them (the partial-page
 * path); a TRIM on one connection reads as zeros on another and gives the
 * extents back.
 */
#include <pthread.h>
#include <stdlib.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "harness.h"
#include "nbd_raw.h"
#include "nbd_util.h"

#define NCONN 4
#define SPAN (4u << 20) /* two extents */

static int open_conn(const struct srv *s)
{
	int fd = greet(nbd_port_of(s), 3);
	assert_int_equal(go(fd, "m"), 16u << 20);
	return fd;
}

static void write_at(int fd, uint64_t handle, uint64_t off, const void *buf, uint32_t len)
{
	request(fd, 0, 1, handle, off, len);
	sendall(fd, buf, len);
	assert_int_equal(reply(fd, handle, NULL, 0), 0);
}

static void read_at(int fd, uint64_t handle, uint64_t off, void *buf, uint32_t len)
{
	request(fd, 0, 0, handle, off, len);
	assert_int_equal(reply(fd, handle, buf, len), 0);
}

static void start(struct srv *s)
{
	assert_int_equal(nbd_srv_start(s, "64M", NULL, NULL), 0);
	char out[4096];
	assert_int_equal(run_capture(out, sizeof(out), SPILLCTL_PATH, "--server", s->admin_url, "export",
				     "create", "m", "--size", "16M", NULL), 0);
}

static void every_connection_sees_every_completed_write(void **state)
{
	(void)state;
	struct srv s = { 0 };
	start(&s);
	int fd[NCONN];
	for (int i = 0; i < NCONN; i++)
		fd[i] = open_conn(&s);
	static uint8_t w[65536], r[65536];
	for (int round = 0; round < 64; round++) {
		uint64_t off = (uint64_t)round * 250007u % ((16u << 20) - sizeof(w));
		uint32_t len = 512u + (uint32_t)round * 1021u % (sizeof(w) - 512);
		memset(w, 1 + round, len);
		write_at(fd[round % NCONN], (uint64_t)round, off, w, len);
		read_at(fd[(round + 1) % NCONN], 1000u + round, off, r, len);
		assert_memory_equal(r, w, len);
	}
	/* FLUSH on any connection. */
	request(fd[2], 0, 3, 7, 0, 0);
	assert_int_equal(reply(fd[2], 7, NULL, 0), 0);
	for (int i = 0; i < NCONN; i++)
		close(fd[i]);
	assert_int_equal(srv_stop(&s), 0);
}

struct sector_writer {
	const struct srv *s;
	int parity;
};

/* Write every other 512-byte sector of [0, SPAN), 32 requests in flight. */
static void *write_sectors(void *arg)
{
	struct sector_writer *w = arg;
	int fd = open_conn(w->s);
	uint8_t sec[512];
	memset(sec, w->parity ? 0xbb : 0xaa, sizeof(sec));
	uint64_t n = SPAN / 512 / 2, sent = 0, got = 0;
	while (got < n) {
		while (sent < n && sent - got < 32) {
			uint64_t off = (sent * 2 + (uint64_t)w->parity) * 512;
			request(fd, 0, 1, sent, off, sizeof(sec));
			sendall(fd, sec, sizeof(sec));
			sent++;
		}
		uint8_t h[16];
		assert_int_equal(recvall(fd, h, sizeof(h)), 0);
		assert_int_equal(get32(h + 4), 0);
		got++;
	}
	close(fd);
	return NULL;
}

static void concurrent_sector_writes_to_new_pages_lose_nothing(void **state)
{
	(void)state;
	struct srv s = { 0 };
	start(&s);
	pthread_t t[2];
	struct sector_writer w[2] = { { &s, 0 }, { &s, 1 } };
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&t[i], NULL, write_sectors, &w[i]), 0);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	int fd = open_conn(&s);
	uint8_t *r = malloc(SPAN);
	read_at(fd, 1, 0, r, SPAN);
	for (uint64_t i = 0; i < SPAN; i++)
		if (r[i] != ((i / 512) % 2 ? 0xbb : 0xaa))
			fail_msg("byte %llu is 0x%02x", (unsigned long long)i, r[i]);
	free(r);
	close(fd);
	assert_int_equal(srv_stop(&s), 0);
}

static void trim_on_one_connection_reads_zeros_on_another(void **state)
{
	(void)state;
	struct srv s = { 0 };
	start(&s);
	int a = open_conn(&s), b = open_conn(&s);
	static uint8_t buf[1 << 20], zero[1 << 20];
	memset(buf, 0x77, sizeof(buf));
	for (uint64_t off = 0; off < SPAN; off += sizeof(buf))
		write_at(a, off, off, buf, sizeof(buf));
	read_at(b, 1, SPAN - sizeof(buf), buf, sizeof(buf));
	assert_int_equal(buf[0], 0x77);
	request(a, 0, 4, 2, 0, SPAN);
	assert_int_equal(reply(a, 2, NULL, 0), 0);
	for (uint64_t off = 0; off < SPAN; off += sizeof(buf)) {
		read_at(b, 3, off, buf, sizeof(buf));
		assert_memory_equal(buf, zero, sizeof(buf));
	}
	char out[4096];
	assert_int_equal(run_capture(out, sizeof(out), SPILLCTL_PATH, "--server", s.admin_url, "--json",
				     "export", "list", NULL), 0);
	assert_non_null(strstr(out, "\"used_bytes\":0,\"connections\":2"));
	close(a);
	close(b);
	assert_int_equal(srv_stop(&s), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(every_connection_sees_every_completed_write),
		cmocka_unit_test(concurrent_sector_writes_to_new_pages_lose_nothing),
		cmocka_unit_test(trim_on_one_connection_reads_zeros_on_another),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
