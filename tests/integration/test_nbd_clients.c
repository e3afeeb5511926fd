/* SPDX-License-Identifier: MIT */
/*
 * The NBD export against clients nobody here wrote: nbdinfo (size, block
 * sizes, flags), qemu-io (patterns at many offsets, aligned or not, across
 * extent boundaries, read back; discard and write-zeroes read back as zeros
 * and give the extents back), qemu-img and nbdcopy (a random file in and out
 * over several connections, compared), and the export's identity under a
 * limit (ENOSPC, the server unharmed).
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "harness.h"
#include "nbd_util.h"

#define QEMU_IO  "/usr/bin/qemu-io"
#define QEMU_IMG "/usr/bin/qemu-img"
#define NBDINFO  "/usr/bin/nbdinfo"
#define NBDCOPY  "/usr/bin/nbdcopy"

static char out[1 << 20];

static void need(const char *tool)
{
	if (!have_tool(tool)) {
		fprintf(stderr, "%s missing (deploy/install-deps installs it): skipped\n", tool);
		skip();
	}
}

static void export_create(const struct srv *s, const char *name, const char *size,
			  const char *client)
{
	int rc = client ? run_capture(out, sizeof(out), SPILLCTL_PATH, "--server", s->admin_url,
				      "export", "create", name, "--size", size, "--client",
				      client, NULL)
			: run_capture(out, sizeof(out), SPILLCTL_PATH, "--server", s->admin_url,
				      "export", "create", name, "--size", size, NULL);
	if (rc)
		fprintf(stderr, "spillctl export create: %s", run_stderr);
	assert_int_equal(rc, 0);
}

/* used_bytes of an export from spillctl export list --json. */
static long long export_used(const struct srv *s, const char *name)
{
	assert_int_equal(run_capture(out, sizeof(out), SPILLCTL_PATH, "--server", s->admin_url,
				     "--json", "export", "list", NULL), 0);
	char key[96];
	snprintf(key, sizeof(key), "\"name\":\"%s\"", name);
	const char *p = strstr(out, key);
	assert_non_null(p);
	p = strstr(p, "\"used_bytes\":");
	assert_non_null(p);
	return atoll(p + 13);
}

static void nbdinfo_reports_size_and_block_sizes(void **state)
{
	(void)state;
	need(NBDINFO);
	struct srv s = { 0 };
	assert_int_equal(nbd_srv_start(&s, "64M", NULL, NULL), 0);
	export_create(&s, "disk", "48M", NULL);
	char uri[128];
	nbd_uri(&s, "disk", uri, sizeof(uri));
	assert_int_equal(run_capture(out, sizeof(out), NBDINFO, uri, NULL), 0);
	assert_non_null(strstr(out, "export-size: 50331648"));
	assert_non_null(strstr(out, "block_size_minimum: 1"));
	assert_non_null(strstr(out, "block_size_preferred: 4096"));
	assert_non_null(strstr(out, "block_size_maximum: 33554432"));
	assert_non_null(strstr(out, "can_multi_conn: true"));
	assert_non_null(strstr(out, "can_trim: true"));
	assert_non_null(strstr(out, "can_zero: true"));
	/* NBD_OPT_LIST through nbdinfo --list. */
	export_create(&s, "second", "4K", NULL);
	char base[64];
	snprintf(base, sizeof(base), "nbd://127.0.0.1:%d", nbd_port_of(&s));
	assert_int_equal(run_capture(out, sizeof(out), NBDINFO, "--list", base, NULL), 0);
	assert_non_null(strstr(out, "export=\"disk\""));
	assert_non_null(strstr(out, "export=\"second\""));
	/* An unknown name is refused (NBD_REP_ERR_UNKNOWN) and nothing else. */
	nbd_uri(&s, "nosuch", uri, sizeof(uri));
	assert_int_not_equal(run_capture(out, sizeof(out), NBDINFO, uri, NULL), 0);
	assert_int_equal(srv_stop(&s), 0);
}

/* qemu-io commands: non-overlapping writes with distinct patterns at many
 * offsets (page-aligned or not, crossing 2 MiB extents), then reads. */
#define NWRITES 40

struct span { uint64_t off, len; int pat; };

static void spans(struct span *v)
{
	uint64_t off = 0;
	for (int i = 0; i < NWRITES; i++) {
		uint64_t len = (i % 4 == 0) ? 4096u * (1 + i % 7) : 512u + (uint64_t)i * 3331u % 300000u;
		off += (i % 3 == 0) ? 4096 : (uint64_t)(i * 7919) % 1500000u + 1;
		if (i % 4 == 0)
			off = (off + 4095) & ~4095ull;
		v[i] = (struct span){ off, len, 1 + i * 6 % 250 };
		off += len;
	}
}

static int qemu_io(const char *uri, char **cmds, int n)
{
	/* Through sh: run_capture takes a fixed argument list. */
	char joined[1 << 16] = "";
	for (int i = 0; i < n; i++) {
		strcat(joined, " -c '");
		strcat(joined, cmds[i]);
		strcat(joined, "'");
	}
	char sh[1 << 17];
	snprintf(sh, sizeof(sh), "%s -f raw '%s'%s 2>&1", QEMU_IO, uri, joined);
	return run_capture(out, sizeof(out), "/bin/sh", "-c", sh, NULL);
}

static void qemu_io_patterns_read_back_and_discard_reads_zeros(void **state)
{
	(void)state;
	need(QEMU_IO);
	struct srv s = { 0 };
	assert_int_equal(nbd_srv_start(&s, "128M", NULL, NULL), 0);
	export_create(&s, "vd", "64M", NULL);
	char uri[128];
	nbd_uri(&s, "vd", uri, sizeof(uri));
	struct span v[NWRITES];
	spans(v);
	assert_true(v[NWRITES - 1].off + v[NWRITES - 1].len < (64u << 20));
	char *cmds[128];
	int n = 0;
	for (int i = 0; i < NWRITES; i++)
		assert_int_not_equal(asprintf(&cmds[n++], "write -P %d %llu %llu", v[i].pat,
					      (unsigned long long)v[i].off,
					      (unsigned long long)v[i].len), -1);
	assert_int_equal(qemu_io(uri, cmds, n), 0);
	assert_null(strstr(out, "failed"));
	for (int i = 0; i < n; i++)
		free(cmds[i]);

	/* Read everything back, in a second process, plus the gaps as zeros. */
	n = 0;
	uint64_t prev = 0;
	for (int i = 0; i < NWRITES; i++) {
		assert_int_not_equal(asprintf(&cmds[n++], "read -P %d %llu %llu", v[i].pat,
					      (unsigned long long)v[i].off,
					      (unsigned long long)v[i].len), -1);
		if (v[i].off > prev)
			assert_int_not_equal(asprintf(&cmds[n++], "read -P 0 %llu %llu",
						      (unsigned long long)prev,
						      (unsigned long long)(v[i].off - prev)), -1);
		prev = v[i].off + v[i].len;
	}
	assert_int_not_equal(asprintf(&cmds[n++], "read -P 0 %llu %llu", (unsigned long long)prev,
				      (unsigned long long)((64u << 20) - prev)), -1);
	assert_int_equal(qemu_io(uri, cmds, n), 0);
	if (strstr(out, "failed") || strstr(out, "error"))
		fprintf(stderr, "%s", out);
	assert_null(strstr(out, "failed"));
	for (int i = 0; i < n; i++)
		free(cmds[i]);
	assert_true(export_used(&s, "vd") > 0);

	/* Discard and write-zeroes: zeros come back, and once every page is
	 * gone the extents go back to the pool. (-u lets qemu unmap; without it
	 * qemu sends NBD_CMD_FLAG_NO_HOLE and the zeros are allocated.) */
	char *z[] = { "discard 0 32M", "write -z -u 32M 32M", "read -P 0 0 64M" };
	assert_int_equal(qemu_io(uri, z, 3), 0);
	assert_null(strstr(out, "failed"));
	assert_int_equal(export_used(&s, "vd"), 0);
	assert_int_equal(srv_stop(&s), 0);
}

static void write_random_file(const char *path, size_t bytes, unsigned seed)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	srand(seed);
	for (size_t i = 0; i < bytes / 4; i++) {
		uint32_t w = (uint32_t)rand() * 2654435761u ^ (uint32_t)i;
		fwrite(&w, 4, 1, f);
	}
	fclose(f);
}

static int files_equal(const char *a, const char *b)
{
	return run_capture(out, sizeof(out), "/usr/bin/cmp", a, b, NULL) == 0;
}

static void nbdcopy_and_qemu_img_copy_files_in_and_out(void **state)
{
	(void)state;
	need(NBDCOPY);
	need(QEMU_IMG);
	struct srv s = { 0 };
	assert_int_equal(nbd_srv_start(&s, "256M", NULL, NULL), 0);
	export_create(&s, "copy", "96M", NULL);
	char uri[128], in[64], back[64], back2[64];
	nbd_uri(&s, "copy", uri, sizeof(uri));
	snprintf(in, sizeof(in), "/tmp/spillway-nbd-in-%d", (int)getpid());
	snprintf(back, sizeof(back), "/tmp/spillway-nbd-out-%d", (int)getpid());
	snprintf(back2, sizeof(back2), "/tmp/spillway-nbd-out2-%d", (int)getpid());
	write_random_file(in, 96u << 20, 7);
	/* nbdcopy uses several connections at once (CAN_MULTI_CONN). */
	assert_int_equal(run_capture(out, sizeof(out), NBDCOPY, "--connections=4", in, uri, NULL), 0);
	assert_int_equal(run_capture(out, sizeof(out), NBDCOPY, "--connections=4", uri, back, NULL), 0);
	assert_true(files_equal(in, back));
	assert_int_equal(run_capture(out, sizeof(out), QEMU_IMG, "compare", "-f", "raw", "-F",
				     "raw", in, uri, NULL), 0);

	/* qemu-img writes a second file over it, then reads it out. */
	write_random_file(in, 96u << 20, 8);
	assert_int_equal(run_capture(out, sizeof(out), QEMU_IMG, "convert", "-n", "-f", "raw", "-O",
				     "raw", in, uri, NULL), 0);
	assert_int_equal(run_capture(out, sizeof(out), QEMU_IMG, "convert", "-f", "raw", "-O", "raw",
				     uri, back2, NULL), 0);
	assert_true(files_equal(in, back2));
	assert_int_equal(run_capture(out, sizeof(out), QEMU_IMG, "info", "-f", "raw", uri, NULL), 0);
	assert_non_null(strstr(out, "100663296 bytes"));
	unlink(in);
	unlink(back);
	unlink(back2);
	assert_int_equal(srv_stop(&s), 0);
}

static void export_limit_gives_enospc_and_accounting_shows(void **state)
{
	(void)state;
	need(QEMU_IO);
	struct srv s = { 0 };
	assert_int_equal(nbd_srv_start(&s, "64M", NULL, NULL), 0);
	assert_int_equal(run_capture(out, sizeof(out), SPILLCTL_PATH, "--server", s.admin_url, "client",
				     "set", "small", "--limit", "4M", "--priority", "-5", NULL), 0);
	export_create(&s, "lim", "32M", "small");
	char uri[128];
	nbd_uri(&s, "lim", uri, sizeof(uri));
	char *ok[] = { "write -P 7 0 4M", "read -P 7 0 4M" };
	assert_int_equal(qemu_io(uri, ok, 2), 0);
	assert_null(strstr(out, "failed"));
	char *over[] = { "write -P 8 8M 4K" };
	qemu_io(uri, over, 1);
	assert_non_null(strstr(out, "No space left on device"));
	/* The identity shows its use and quota like any client. */
	assert_int_equal(run_capture(out, sizeof(out), SPILLCTL_PATH, "--server", s.admin_url, "clients",
				     NULL), 0);
	assert_non_null(strstr(out, "small"));
	assert_int_equal(export_used(&s, "lim"), 4 << 20);
	/* What was written is still there; the export still works. */
	char *again[] = { "read -P 7 0 4M", "discard 0 4M", "write -P 9 8M 4K", "read -P 9 8M 4K" };
	assert_int_equal(qemu_io(uri, again, 4), 0);
	assert_null(strstr(out, "failed"));
	assert_int_equal(run_capture(out, sizeof(out), SPILLCTL_PATH, "--server", s.admin_url, "export",
				     "delete", "lim", NULL), 0);
	assert_int_not_equal(run_capture(out, sizeof(out), SPILLCTL_PATH, "--server", s.admin_url,
					 "export", "delete", "lim", NULL), 0);
	/* Recreated on the same identity (it joins it with the kept token). */
	export_create(&s, "lim", "32M", "small");
	assert_int_equal(srv_stop(&s), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(nbdinfo_reports_size_and_block_sizes),
		cmocka_unit_test(qemu_io_patterns_read_back_and_discard_reads_zeros),
		cmocka_unit_test(nbdcopy_and_qemu_img_copy_files_in_and_out),
		cmocka_unit_test(export_limit_gives_enospc_and_accounting_shows),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
