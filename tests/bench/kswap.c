/* SPDX-License-Identifier: MIT */
/*
 * The baseline the pager must beat: the kernel swapping the same workload to
 * a swap file on the local disk, with the same local budget enforced by a
 * cgroup v1 memory limit (memory.memsw left unlimited so it may swap).
 *
 * The swap file is ours even when the host already has swap on: it is added
 * at the highest priority, so the baseline is this disk whatever else exists
 * (a zram device there would otherwise keep "swapped" pages in RAM). State is
 * in static buffers so kswap_teardown() can run from a signal handler.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/swap.h>
#include <unistd.h>

#include "bench.h"
#include "bench_pager.h"

#define SWAP_DIR   "/var/tmp"
#define CG_DEFAULT "/sys/fs/cgroup/memory"
#define SWAP_PRIO  32767

static char swapfile[128], cgroup_dir[192], mounted_at[128];
static volatile int swap_on, cgroup_made, cg_mounted;
static volatile pid_t owner;  /* only the process that set up tears down */

static int write_text(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t n = write(fd, text, strlen(text));
	int rc = n == (ssize_t)strlen(text) ? 0 : n < 0 ? -errno : -EIO;
	close(fd);
	return rc;
}

static int read_u64(const char *path, uint64_t *v)
{
	char buf[64];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return n < 0 ? -errno : -EIO;
	buf[n] = '\0';
	*v = strtoull(buf, NULL, 10);
	return 0;
}

/* Where the v1 memory controller is mounted; mount it if nowhere. */
static int find_memcg(char *out, size_t cap)
{
	FILE *f = fopen("/proc/self/mounts", "re");
	char dev[256], dir[128], type[64], opts[512];
	int found = 0;
	while (f && !found && fscanf(f, "%255s %127s %63s %511s %*d %*d", dev, dir, type, opts) == 4) {
		if (strcmp(type, "cgroup"))
			continue;
		for (char *save = NULL, *o = strtok_r(opts, ",", &save); o; o = strtok_r(NULL, ",", &save))
			found |= !strcmp(o, "memory");
		if (found)
			snprintf(out, cap, "%.127s", dir);
	}
	if (f)
		fclose(f);
	if (found)
		return 0;
	if (mkdir(CG_DEFAULT, 0755) && errno != EEXIST)
		return -errno;
	if (mount("cgroup", CG_DEFAULT, "cgroup", 0, "memory"))
		return -errno;
	snprintf(mounted_at, sizeof(mounted_at), "%s", CG_DEFAULT);
	cg_mounted = 1;
	snprintf(out, cap, "%s", CG_DEFAULT);
	return 0;
}

/* Other swap areas that are on, as "path (type)" text. */
static void other_swap(char *out, size_t cap)
{
	FILE *f = fopen("/proc/swaps", "re");
	char line[512], name[256], type[32];
	size_t len = 0;
	out[0] = '\0';
	if (!f)
		return;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "%255s %31s", name, type) == 2 && strcmp(name, "Filename") &&
		    strcmp(name, swapfile) && len < cap)
			len += (size_t)snprintf(out + len, cap - len, "%s%s (%s)", len ? ", " : "",
						name, type);
	fclose(f);
}

static int zswap_state(void)
{
	char c = 0;
	int fd = open("/sys/module/zswap/parameters/enabled", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, &c, 1);
	close(fd);
	return n == 1 ? c == 'Y' : -1;
}

/* fallocate, else write zeros (swapon refuses files with holes). */
static int make_file(const char *path, uint64_t bytes, int zeros)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	int rc = 0;
	if (!zeros) {
		rc = fallocate(fd, 0, 0, (off_t)bytes) ? -errno : 0;
	} else {
		static const uint8_t zero[1 << 16];
		for (uint64_t off = 0; !rc && off < bytes; off += sizeof(zero))
			rc = write(fd, zero, sizeof(zero)) == (ssize_t)sizeof(zero) ? 0 : -EIO;
	}
	if (!rc && fsync(fd))
		rc = -errno;
	close(fd);
	return rc;
}

static int mkswap(const char *path)
{
	char *argv[] = { "mkswap", "-q", (char *)path, NULL };
	int rc = spawn_run(argv, 60000);
	if (rc == 127) {
		argv[0] = "/sbin/mkswap";
		rc = spawn_run(argv, 60000);
	}
	return rc == 0 ? 0 : rc < 0 ? rc : -EIO;
}

static int add_swap(uint64_t bytes, char *why, size_t cap)
{
	snprintf(swapfile, sizeof(swapfile), SWAP_DIR "/spillway-bench-%d.swap", (int)getpid());
	int flags = SWAP_FLAG_PREFER | ((SWAP_PRIO << SWAP_FLAG_PRIO_SHIFT) & SWAP_FLAG_PRIO_MASK);
	int rc = 0;
	for (int zeros = 0; zeros < 2; zeros++) {
		rc = make_file(swapfile, bytes, zeros);
		if (!rc)
			rc = mkswap(swapfile);
		if (!rc)
			rc = swapon(swapfile, flags) ? -errno : 0;
		if (!rc) {
			swap_on = 1;
			return 0;
		}
		if (rc != -EINVAL)  /* EINVAL: this filesystem wants written blocks */
			break;
	}
	snprintf(why, cap, "swap file %s: %s", swapfile, strerror(-rc));
	unlink(swapfile);
	swapfile[0] = '\0';
	return rc;
}

int kswap_setup(uint64_t swap_bytes, struct kswap_info *k)
{
	char root[128], others[200];
	memset(k, 0, sizeof(*k));
	owner = getpid();
	k->zswap = zswap_state();
	if (geteuid() != 0) {
		snprintf(k->note, sizeof(k->note), "needs root (swapon, memory cgroup)");
		return -EPERM;
	}
	int rc = find_memcg(root, sizeof(root));
	if (rc) {
		snprintf(k->note, sizeof(k->note), "no cgroup v1 memory controller: %s", strerror(-rc));
		return rc;
	}
	snprintf(cgroup_dir, sizeof(cgroup_dir), "%.127s/spillway-bench-%d", root, (int)getpid());
	if (mkdir(cgroup_dir, 0755)) {
		rc = -errno;
		snprintf(k->note, sizeof(k->note), "mkdir %s: %s", cgroup_dir, strerror(-rc));
		cgroup_dir[0] = '\0';
		return rc;
	}
	cgroup_made = 1;
	rc = add_swap(swap_bytes, k->note, sizeof(k->note));
	other_swap(others, sizeof(others));
	if (rc && !others[0]) {
		kswap_teardown();
		return rc;
	}
	/* Without a file of our own, fall back on what is on (said in the note). */
	if (rc)
		snprintf(k->note, sizeof(k->note), "could not add a swap file; using %s", others);
	else if (others[0])
		snprintf(k->note, sizeof(k->note), "swap file %s at priority %d, before %s", swapfile,
			 SWAP_PRIO, others);
	else
		snprintf(k->note, sizeof(k->note), "swap file %s", swapfile);
	snprintf(k->swapfile, sizeof(k->swapfile), "%s", swapfile);
	snprintf(k->cgroup, sizeof(k->cgroup), "%s", cgroup_dir);
	k->swap_bytes = rc ? 0 : swap_bytes;
	k->ready = 1;
	return 0;
}

int kswap_enter(const struct kswap_info *k, uint64_t budget)
{
	char path[PATH_MAX], text[32];
	snprintf(path, sizeof(path), "%s/cgroup.procs", k->cgroup);
	snprintf(text, sizeof(text), "%d", (int)getpid());
	int rc = write_text(path, text);
	if (rc)
		return rc;
	/* Charges start at 0 when a process joins (move_charge_at_immigrate is
	 * off); the budget is on top of what this process has charged since. */
	uint64_t used = 0;
	snprintf(path, sizeof(path), "%s/memory.usage_in_bytes", k->cgroup);
	rc = read_u64(path, &used);
	if (rc)
		return rc;
	snprintf(path, sizeof(path), "%s/memory.limit_in_bytes", k->cgroup);
	snprintf(text, sizeof(text), "%llu", (unsigned long long)(used + budget));
	return write_text(path, text);
}

void kswap_counters(uint64_t *in, uint64_t *out)
{
	FILE *f = fopen("/proc/vmstat", "re");
	char name[64];
	unsigned long long v;
	*in = *out = 0;
	while (f && fscanf(f, "%63s %llu", name, &v) == 2) {
		if (!strcmp(name, "pswpin"))
			*in = v;
		else if (!strcmp(name, "pswpout"))
			*out = v;
	}
	if (f)
		fclose(f);
}

uint64_t kswap_oom_kills(void)
{
	char path[256], name[64];
	unsigned long long v, kills = 0;
	snprintf(path, sizeof(path), "%s/memory.oom_control", cgroup_dir);
	FILE *f = cgroup_made ? fopen(path, "re") : NULL;
	while (f && fscanf(f, "%63s %llu", name, &v) == 2)
		if (!strcmp(name, "oom_kill"))
			kills = v;
	if (f)
		fclose(f);
	return kills;
}

void kswap_teardown(void)
{
	if (owner != getpid())
		return;
	if (cgroup_made && rmdir(cgroup_dir) == 0)
		cgroup_made = 0;
	if (swap_on && swapoff(swapfile) == 0) {
		swap_on = 0;
		unlink(swapfile);
	}
	if (cg_mounted && umount(mounted_at) == 0)
		cg_mounted = 0;
}
