/* SPDX-License-Identifier: MIT */
/*
 * spillway-bench nbd: the same NBD workloads against spillwayd's export and
 * nbdkit's memory plugin (Debian's nbdkit), in one run on loopback:
 * sequential write and read of SIZE with nbdcopy (its defaults: several
 * connections, 256 KiB requests), and random 4 KiB reads and writes with 16
 * in flight on one connection (nbd_client.c). Prints both and the ratio
 * spillway / nbdkit. Not pass/fail.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "bench_nbd.h"
#include "config.h"

struct nbd_target {
	const char *label;
	int port;
	const char *name;
	double seq_write_mbs, seq_read_mbs, rand_read_ops, rand_write_ops;
};

static double timed_run(char *const argv[], uint64_t bytes)
{
	uint64_t t0 = now_ns();
	int rc = spawn_run(argv, 600000);
	double s = (double)(now_ns() - t0) / 1e9;
	if (rc) {
		fprintf(stderr, "spillway-bench: %s exited %d\n", argv[0], rc);
		return -1;
	}
	return (double)bytes / s / 1e6;
}

static int measure(struct nbd_target *t, const char *file, uint64_t size, double seconds)
{
	char uri[128];
	snprintf(uri, sizeof(uri), "nbd://127.0.0.1:%d/%s", t->port, t->name);
	char *w[] = { "nbdcopy", (char *)file, uri, NULL };
	char *r[] = { "nbdcopy", uri, "null:", NULL };
	t->seq_write_mbs = timed_run(w, size);
	t->seq_read_mbs = timed_run(r, size);
	t->rand_write_ops = nbd_random_4k(t->port, t->name, size, 1, 16, seconds);
	t->rand_read_ops = nbd_random_4k(t->port, t->name, size, 0, 16, seconds);
	fprintf(bench_info, "%-10s seq write %8.0f MB/s  seq read %8.0f MB/s  "
		"rand 4K write %8.0f ops/s  rand 4K read %8.0f ops/s\n", t->label,
		t->seq_write_mbs, t->seq_read_mbs, t->rand_write_ops, t->rand_read_ops);
	return t->seq_write_mbs < 0 || t->seq_read_mbs < 0 || t->rand_write_ops < 0 ||
	       t->rand_read_ops < 0 ? -EIO : 0;
}

static int random_file(const char *path, uint64_t size)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600), in = open("/dev/urandom", O_RDONLY);
	static char buf[1 << 20];
	int rc = fd < 0 || in < 0 ? -errno : 0;
	for (uint64_t left = size; !rc && left; left -= sizeof(buf))
		if (read(in, buf, sizeof(buf)) != (ssize_t)sizeof(buf) ||
		    write(fd, buf, sizeof(buf)) != (ssize_t)sizeof(buf))
			rc = -EIO;
	if (fd >= 0)
		close(fd);
	if (in >= 0)
		close(in);
	return rc;
}

int cmd_nbd(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "size", required_argument, NULL, 's' },
		{ "seconds", required_argument, NULL, 't' },
		{ "json", no_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 },
	};
	uint64_t size = 256u << 20;
	double seconds = 3;
	int json = 0, opt;
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (opt == 's' && !config_parse_size(optarg, &size) && size >= (1u << 20) &&
		    size % (1u << 20) == 0)
			continue;
		if (opt == 't' && (seconds = atof(optarg)) > 0)
			continue;
		if (opt == 'j') {
			json = 1;
			continue;
		}
		fprintf(stderr, "usage: spillway-bench nbd [--size SIZE (MiB multiple)] [--seconds S] [--json]\n");
		return 2;
	}
	if (json)
		bench_info = stderr;
	char file[64], pidfile[64], sizetext[32], cap[32], nbdaddr[32], url[64], kport[16];
	snprintf(file, sizeof(file), "/tmp/spillway-bench-nbd-%d", (int)getpid());
	snprintf(pidfile, sizeof(pidfile), "/tmp/spillway-bench-nbdkit-%d.pid", (int)getpid());
	snprintf(sizetext, sizeof(sizetext), "%llu", (unsigned long long)size);
	snprintf(cap, sizeof(cap), "%lluM", (unsigned long long)(size >> 20) + 64);
	if (random_file(file, size)) {
		fprintf(stderr, "spillway-bench: cannot write %s\n", file);
		return 1;
	}
	struct proc srv;
	int port, nport = free_tcp_port(), kp = free_tcp_port(), rc = 1;
	snprintf(nbdaddr, sizeof(nbdaddr), "127.0.0.1:%d", nport);
	char sock[64]; /* export create is an operator command: the admin socket */
	snprintf(sock, sizeof(sock), "/tmp/spillway-bench-%d.sock", (int)getpid());
	const char *extra[] = { "--nbd", nbdaddr, "--admin-socket", sock, NULL };
	if (spawn_spillwayd_args(cap, NULL, extra, &srv, &port)) {
		unlink(file);
		return 1;
	}
	char ctl[4096];
	spawn_find_tool("spillctl", "SPILLCTL", ctl, sizeof(ctl));
	snprintf(url, sizeof(url), "tcp://127.0.0.1:%d", port);
	char line[4300];
	snprintf(line, sizeof(line), "exec '%s' --server unix://%s export create bench --size %s >/dev/null",
		 ctl, sock, sizetext);
	char *create[] = { "/bin/sh", "-c", line, NULL }; /* its table would spoil --json */
	/* nbdkit forks into the background once it listens: its exit is the
	 * ready signal. */
	snprintf(kport, sizeof(kport), "%d", kp);
	char ksize[48];
	snprintf(ksize, sizeof(ksize), "size=%s", sizetext);
	char *kit[] = { "nbdkit", "-P", pidfile, "-i", "127.0.0.1", "-p", kport, "memory", ksize, NULL };
	struct nbd_target sw = { "spillway", nport, "bench", 0, 0, 0, 0 };
	struct nbd_target nk = { "nbdkit", kp, "", 0, 0, 0, 0 };
	if (spawn_run(create, 30000) || spawn_run(kit, 30000)) {
		fprintf(stderr, "spillway-bench: export create or nbdkit failed\n");
		goto out;
	}
	fprintf(bench_info, "NBD over loopback, %llu MiB, nbdcopy sequential; random 4 KiB x16 "
		"in flight for %.1f s\n", (unsigned long long)(size >> 20), seconds);
	if (measure(&sw, file, size, seconds) || measure(&nk, file, size, seconds))
		goto out;
	fprintf(bench_info, "ratio spillway/nbdkit: seq write %.2f  seq read %.2f  rand write %.2f  "
		"rand read %.2f\n", sw.seq_write_mbs / nk.seq_write_mbs, sw.seq_read_mbs / nk.seq_read_mbs,
		sw.rand_write_ops / nk.rand_write_ops, sw.rand_read_ops / nk.rand_read_ops);
	if (json)
		printf("{\"size_bytes\":%llu,\"spillway\":{\"seq_write_mbs\":%.0f,\"seq_read_mbs\":%.0f,"
		       "\"rand4k_write_ops\":%.0f,\"rand4k_read_ops\":%.0f},\"nbdkit\":{\"seq_write_mbs\":"
		       "%.0f,\"seq_read_mbs\":%.0f,\"rand4k_write_ops\":%.0f,\"rand4k_read_ops\":%.0f}}\n",
		       (unsigned long long)size, sw.seq_write_mbs, sw.seq_read_mbs, sw.rand_write_ops,
		       sw.rand_read_ops, nk.seq_write_mbs, nk.seq_read_mbs, nk.rand_write_ops,
		       nk.rand_read_ops);
	rc = 0;
out:;
	FILE *pf = fopen(pidfile, "r");
	int kpid = 0;
	if (pf && fscanf(pf, "%d", &kpid) == 1 && kpid > 0)
		kill(kpid, SIGTERM);
	if (pf)
		fclose(pf);
	unlink(pidfile);
	unlink(file);
	int st;
	proc_stop(&srv, &st);
	return rc;
}
