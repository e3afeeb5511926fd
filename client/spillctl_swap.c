/* SPDX-License-Identifier: MIT */
/*
 * spillctl swap attach | detach | status.
 *
 *   spillctl swap attach --server URL [--server URL]... --size SIZE [--name NAME]
 *                        [--replicas N] [--connections N] [--psk-file F]
 *                        [--swapon[=PRIO]] [--priority N] [--foreground]
 *   spillctl swap detach [--swapoff] DEV
 *   spillctl swap status [--json] [DEV]
 *
 * DEV is /dev/spillwayN, spillwayN, or the attachment's name.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/swap.h>
#include <sys/wait.h>
#include <unistd.h>

#include "client.h"
#include "config.h"
#include "spillctl_swap.h"

#define EXIT_USAGE 2

void swap_usage(FILE *out)
{
	fprintf(out,
		"  swap attach --server URL [--server URL]... --size SIZE [--name NAME]\n"
		"              [--replicas N] [--connections N] [--psk-file FILE]\n"
		"              [--swapon[=PRIO]] [--priority N] [--foreground]\n"
		"                              far memory as /dev/spillwayN (spillway.ko); stays\n"
		"                              resident to reconnect (in the background unless\n"
		"                              --foreground); prints the device. --priority:\n"
		"                              the arbiter priority asked (-1000..1000; default\n"
		"                              -1000: never a victim; see docs/swap.md)\n"
		"  swap detach [--swapoff] DEV remove /dev/spillwayN (DEV: path, spillwayN or name)\n"
		"  swap status [--json] [DEV]  attachments: servers, pages remote, failovers, errors\n");
}

static int usage_error(const char *fmt, const char *arg)
{
	fprintf(stderr, "spillctl: swap: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, " (see spillctl --help)\n");
	return EXIT_USAGE;
}

static int open_ctl(int load)
{
	int fd = swap_ctl_open(load);
	if (fd < 0)
		fprintf(stderr, "spillctl: %s: %s%s\n", SWAP_CTL_PATH, strerror(-fd),
			fd == -ENOENT ? " (is spillway.ko loaded? modprobe spillway)" : "");
	return fd;
}

/* Every attachment the module has, in index order. */
static size_t list_devices(int ctl, struct spill_ioc_status *out)
{
	size_t n = 0;
	for (uint32_t i = 0; i < SPILL_MAX_DEVICES; i++)
		if (swap_status(ctl, i, &out[n]) == 0)
			n++;
	return n;
}

/* DEV -> index: /dev/spillwayN, spillwayN, or a name. -1 if none matches. */
static int resolve(int ctl, const char *dev)
{
	struct spill_ioc_status st[SPILL_MAX_DEVICES];
	size_t n = list_devices(ctl, st);
	const char *base = strncmp(dev, "/dev/", 5) ? dev : dev + 5;
	size_t plen = strlen(SPILL_DISK_PREFIX);
	if (!strncmp(base, SPILL_DISK_PREFIX, plen) && base[plen]) {
		char *end;
		unsigned long idx = strtoul(base + plen, &end, 10);
		if (!*end)
			for (size_t i = 0; i < n; i++)
				if (st[i].index == idx)
					return (int)idx;
	}
	for (size_t i = 0; i < n; i++)
		if (!strncmp(st[i].name, dev, sizeof(st[i].name)))
			return (int)st[i].index;
	return -1;
}

/* --- attach -------------------------------------------------------------- */

static void default_name(char *buf, size_t cap)
{
	char host[64] = "host";
	gethostname(host, sizeof(host) - 1);
	snprintf(buf, cap, "swap.%s", host);
	for (char *p = buf; *p; p++)
		if (!(*p >= 'a' && *p <= 'z') && !(*p >= 'A' && *p <= 'Z') &&
		    !(*p >= '0' && *p <= '9') && *p != '.' && *p != '_' && *p != ':' && *p != '-')
			*p = '-';
}

static int parse_attach(int argc, char **argv, const char *dflt_server, struct swap_attach *a)
{
	static const struct option opts[] = {
		{ "server", required_argument, NULL, 's' },
		{ "size", required_argument, NULL, 'z' },
		{ "name", required_argument, NULL, 'n' },
		{ "replicas", required_argument, NULL, 'r' },
		{ "connections", required_argument, NULL, 'c' },
		{ "psk-file", required_argument, NULL, 'k' },
		{ "swapon", optional_argument, NULL, 'o' },
		{ "foreground", no_argument, NULL, 'f' },
		{ "priority", required_argument, NULL, 'p' },
		{ NULL, 0, NULL, 0 },
	};
	long v;
	int opt;
	a->ctl = -1;
	a->conns = 2;
	a->swap_prio = -1;
	/* -1000 unless asked: the arbiter weighs a client's use over the whole
	 * cluster, and a device that moves copies frees nothing there; what it
	 * revokes at the deadline the device can never read back. */
	a->priority = -1000;
	optind = 1;
	while ((opt = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
		switch (opt) {
		case 's':
			if (a->nservers == SPILL_MAX_SERVERS)
				return usage_error("at most 8 --server, not more: '%s'", optarg);
			if (!strncmp(optarg, "rdma://", 7))
				return usage_error("--server %s: spillway.ko moves pages over TCP only; "
						   "give the server's tcp:// URL", optarg);
			a->srv[a->nservers++].url = optarg;
			break;
		case 'z':
			if (config_parse_size(optarg, &a->size) || a->size < 1024 * 1024 ||
			    a->size % 4096 || a->size > SPILL_MAX_SIZE)
				return usage_error("--size: '%s' is not a size from 1M to 256G in 4K pages", optarg);
			break;
		case 'n':
			if (!ctrl_name_valid(optarg))
				return usage_error("--name: '%s' is not 1..64 of [A-Za-z0-9._:-]", optarg);
			snprintf(a->name, sizeof(a->name), "%s", optarg);
			break;
		case 'r':
			if (config_parse_int(optarg, 1, SPILL_MAX_REPLICAS, &v))
				return usage_error("--replicas must be 1..4, not '%s'", optarg);
			a->replicas = (unsigned)v;
			break;
		case 'c':
			if (config_parse_int(optarg, 1, SPILL_MAX_CONNS, &v))
				return usage_error("--connections must be 1..8, not '%s'", optarg);
			a->conns = (unsigned)v;
			break;
		case 'k':
			/* handled by the caller, which owns the key */
			break;
		case 'o':
			a->swapon = 1;
			if (optarg) {
				if (config_parse_int(optarg, 0, 32767, &v))
					return usage_error("--swapon=PRIO: priority 0..32767, not '%s'", optarg);
				a->swap_prio = (int)v;
			}
			break;
		case 'f':
			a->foreground = 1;
			break;
		case 'p':
			if (config_parse_int(optarg, -1000, 1000, &v))
				return usage_error("--priority must be -1000..1000, not '%s'", optarg);
			a->priority = (int)v;
			break;
		case ':':
			return usage_error("attach: '%s' needs a value", argv[optind - 1]);
		default:
			return usage_error("attach: unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind != argc)
		return usage_error("attach: unexpected argument '%s'", argv[optind]);
	if (!a->size)
		return usage_error("attach: --size is required%s", "");
	if (!a->nservers)
		a->srv[a->nservers++].url = dflt_server;
	if (!a->replicas)
		a->replicas = a->nservers < 2 ? 1 : 2;
	if (a->replicas > a->nservers)
		return usage_error("attach: --replicas cannot exceed the number of servers%s", "");
	if (!a->name[0])
		default_name(a->name, sizeof(a->name));
	return 0;
}

/* mkswap DEV, then swapon with discard (freed slots give server memory back). */
static int do_swapon(const struct swap_attach *a)
{
	pid_t pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);
		if (null >= 0)
			dup2(null, 1);
		execlp("mkswap", "mkswap", a->dev_path, (char *)NULL);
		_exit(127);
	}
	int st;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (!WIFEXITED(st) || WEXITSTATUS(st)) {
		fprintf(stderr, "spillctl: mkswap %s failed\n", a->dev_path);
		return -EIO;
	}
	int flags = SWAP_FLAG_DISCARD;
	if (a->swap_prio >= 0)
		flags |= SWAP_FLAG_PREFER | (a->swap_prio & SWAP_FLAG_PRIO_MASK);
	if (swapon(a->dev_path, flags)) {
		int e = errno;
		fprintf(stderr, "spillctl: swapon %s: %s\n", a->dev_path, strerror(e));
		return -e;
	}
	return 0;
}

/* The device node appears once udev or devtmpfs has seen the disk. */
static int wait_node(const char *path)
{
	struct stat sb;
	for (int i = 0; i < 500; i++) {
		if (stat(path, &sb) == 0 && S_ISBLK(sb.st_mode))
			return 0;
		usleep(10000);
	}
	return -ENOENT;
}

static int attach(struct swap_attach *a)
{
	char err[512];
	struct spill_ioc_status st[SPILL_MAX_DEVICES];
	int ctl = open_ctl(1);
	if (ctl < 0)
		return 1;
	/* One resident per name: two would fight over the connections. */
	int lock = swap_lock(a->name);
	if (lock == -EWOULDBLOCK) {
		fprintf(stderr, "spillctl: swap attach: another spillctl serves %s\n", a->name);
		close(ctl);
		return 1;
	}
	/* A device of that name and no resident: its spillctl died (or was
	 * restarted by systemd). Serve it again rather than attach twice: two
	 * attachments of one identity would overwrite each other's pages. */
	size_t n = list_devices(ctl, st);
	for (size_t i = 0; i < n; i++) {
		if (strncmp(st[i].name, a->name, sizeof(st[i].name)))
			continue;
		if (lock < 0 || st[i].nservers != a->nservers) {
			fprintf(stderr, "spillctl: swap attach: /dev/%s%u is already attached as %s%s\n",
				SPILL_DISK_PREFIX, st[i].index, a->name,
				lock < 0 ? "" : " with another number of servers");
			close(ctl);
			return 1;
		}
		a->ctl = ctl;
		a->index = st[i].index;
		a->id = st[i].id;
		a->extent_bytes = st[i].extent_bytes;
		snprintf(a->dev_path, sizeof(a->dev_path), "/dev/" SPILL_DISK_PREFIX "%u", a->index);
		printf("%s\n", a->dev_path);
		fflush(stdout);
		return swap_resident(a);
	}

	/* Register with every server first: it tells the extent size. */
	for (unsigned i = 0; i < a->nservers; i++) {
		int rc = swap_add_connection(a, i, 0, 1, err, sizeof(err));
		if (rc) {
			fprintf(stderr, "spillctl: swap attach: %s\n", err);
			close(ctl);
			return 1;
		}
	}
	struct spill_ioc_add add = {
		.size = a->size, .extent_bytes = a->extent_bytes,
		.nservers = a->nservers, .replicas = a->replicas,
	};
	snprintf(add.name, sizeof(add.name), "%s", a->name);
	for (unsigned i = 0; i < a->nservers; i++)
		snprintf(add.labels[i], sizeof(add.labels[i]), "%s", a->srv[i].url);
	if (ioctl(ctl, SPILL_IOC_ADD, &add)) {
		fprintf(stderr, "spillctl: swap attach: spillway.ko: %s\n", strerror(errno));
		close(ctl);
		return 1;
	}
	a->ctl = ctl;
	a->index = add.index;
	a->id = add.id;
	snprintf(a->dev_path, sizeof(a->dev_path), "/dev/" SPILL_DISK_PREFIX "%u", add.index);

	for (unsigned i = 0; i < a->nservers; i++)
		for (unsigned k = 0; k < a->conns; k++) {
			int rc = swap_add_connection(a, i, 0, 0, err, sizeof(err));
			if (rc) {
				fprintf(stderr, "spillctl: swap attach: %s\n", err);
				goto remove;
			}
		}
	if (wait_node(a->dev_path)) {
		fprintf(stderr, "spillctl: swap attach: %s did not appear\n", a->dev_path);
		goto remove;
	}
	if (a->swapon && do_swapon(a))
		goto remove;
	printf("%s\n", a->dev_path);
	fflush(stdout);
	return swap_resident(a);

remove:;
	struct spill_ioc_remove rm = { .id = a->id, .index = a->index };
	ioctl(ctl, SPILL_IOC_REMOVE, &rm);
	close(ctl);
	return 1;
}

/* --- detach and status --------------------------------------------------- */

static int detach(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "swapoff", no_argument, NULL, 'o' },
		{ NULL, 0, NULL, 0 },
	};
	int opt, off = 0;
	optind = 1;
	while ((opt = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
		if (opt != 'o')
			return usage_error("detach: unknown option '%s'", argv[optind - 1]);
		off = 1;
	}
	if (optind != argc - 1)
		return usage_error("detach: give one device%s", "");
	int ctl = open_ctl(0);
	if (ctl < 0)
		return 1;
	int idx = resolve(ctl, argv[optind]);
	if (idx < 0) {
		fprintf(stderr, "spillctl: swap detach: no attachment %s\n", argv[optind]);
		close(ctl);
		return 1;
	}
	char path[64];
	snprintf(path, sizeof(path), "/dev/" SPILL_DISK_PREFIX "%d", idx);
	if (off && swapoff(path) && errno != EINVAL) {
		fprintf(stderr, "spillctl: swapoff %s: %s\n", path, strerror(errno));
		close(ctl);
		return 1;
	}
	struct spill_ioc_remove rm = { .index = (uint32_t)idx };
	int rc = ioctl(ctl, SPILL_IOC_REMOVE, &rm) ? errno : 0;
	close(ctl);
	if (rc) {
		fprintf(stderr, "spillctl: swap detach %s: %s%s\n", path, strerror(rc),
			rc == EBUSY ? " (in use: swapoff first, or --swapoff)" : "");
		return 1;
	}
	return 0;
}

static int status(int argc, char **argv, int json)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 },
	};
	int opt;
	optind = 1;
	while ((opt = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
		if (opt != 'j')
			return usage_error("status: unknown option '%s'", argv[optind - 1]);
		json = 1;
	}
	if (argc - optind > 1)
		return usage_error("status: unexpected argument '%s'", argv[optind + 1]);
	int ctl = open_ctl(0);
	if (ctl < 0)
		return 1;
	struct spill_ioc_status st[SPILL_MAX_DEVICES];
	size_t n = list_devices(ctl, st);
	if (optind < argc) {
		int idx = resolve(ctl, argv[optind]);
		size_t k = 0;
		for (size_t i = 0; i < n; i++)
			if ((int)st[i].index == idx)
				st[k++] = st[i];
		if (!k) {
			fprintf(stderr, "spillctl: swap status: no attachment %s\n", argv[optind]);
			close(ctl);
			return 1;
		}
		n = k;
	}
	close(ctl);
	swap_print(stdout, st, n, json);
	return 0;
}

int spillctl_swap(int argc, char **argv, const char *server, const char *psk_file, int json)
{
	if (argc < 1)
		return usage_error("give attach, detach or status%s", "");
	const char *sub = argv[0];
	if (!strcmp(sub, "detach"))
		return detach(argc, argv);
	if (!strcmp(sub, "status"))
		return status(argc, argv, json);
	if (strcmp(sub, "attach"))
		return usage_error("unknown subcommand '%s'", sub);

	static struct swap_attach a; /* static: large, and lives as long as the daemon */
	static struct auth_psk psk;
	int rc = parse_attach(argc, argv, server, &a);
	if (rc)
		return rc;
	/* --psk-file after "attach" wins over the global one. */
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--psk-file") && i + 1 < argc)
			psk_file = argv[i + 1];
		else if (!strncmp(argv[i], "--psk-file=", 11))
			psk_file = argv[i] + 11;
	}
	if (psk_file) {
		rc = auth_psk_load(psk_file, &psk);
		if (rc) {
			fprintf(stderr, "spillctl: %s: %s\n", psk_file, auth_psk_strerror(rc));
			return 1;
		}
		a.psk = &psk;
	}
	return attach(&a);
}
