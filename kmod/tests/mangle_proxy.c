/* SPDX-License-Identifier: MIT */
/*
 * spill-mangle: a TCP proxy on loopback that passes bytes through untouched
 * until told to corrupt one reply, to show that a bad server reply costs
 * spillway.ko one connection and nothing else.
 *
 *   spill-mangle --listen PORT --upstream PORT --trigger PREFIX
 *
 * Prints "listening" once it accepts. Whenever the file PREFIX<n> appears
 * (n = 1, 2, ...), the next read of at least 64 bytes from the upstream
 * server has one byte flipped, at an offset that walks through the frame
 * header's fields (magic, version, op, req_id, npages, payload_len, crc)
 * and into the payload; then it creates PREFIX<n>.done. Every connection
 * pair closes when either side does.
 */
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_PAIRS 64

struct pair {
	int client, server;
};

static struct pair pairs[MAX_PAIRS];
static int npairs;

static int tcp_listen(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(fd, (struct sockaddr *)&a, sizeof(a)) || listen(fd, 64))
		return -1;
	return fd;
}

static int tcp_connect(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a))) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static void drop(int i)
{
	close(pairs[i].client);
	close(pairs[i].server);
	pairs[i] = pairs[--npairs];
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "upstream", required_argument, NULL, 'u' },
		{ "trigger", required_argument, NULL, 't' },
		{ NULL, 0, NULL, 0 },
	};
	/* Header fields of proto/wire.h, then a payload byte. */
	static const size_t offsets[] = { 1, 4, 6, 9, 28, 33, 37, 52 };
	int port = 0, upstream = 0, opt;
	const char *trigger = NULL;
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 'l': port = atoi(optarg); break;
		case 'u': upstream = atoi(optarg); break;
		case 't': trigger = optarg; break;
		default: goto usage;
		}
	}
	if (!port || !upstream || !trigger)
		goto usage;
	/* The module closes a connection the moment a reply is bad, often
	 * while more of that reply is on its way: writing there must fail with
	 * EPIPE and drop the pair, not kill the proxy (and with it server 0). */
	signal(SIGPIPE, SIG_IGN);
	int lfd = tcp_listen(port);
	if (lfd < 0) {
		perror("spill-mangle: listen");
		return 1;
	}
	printf("listening\n");
	fflush(stdout);

	unsigned n = 1;
	int armed = 0;
	static char buf[256 * 1024];
	for (;;) {
		struct pollfd p[1 + 2 * MAX_PAIRS];
		int np = 0;
		p[np++] = (struct pollfd){ .fd = lfd, .events = POLLIN };
		for (int i = 0; i < npairs; i++) {
			p[np++] = (struct pollfd){ .fd = pairs[i].client, .events = POLLIN };
			p[np++] = (struct pollfd){ .fd = pairs[i].server, .events = POLLIN };
		}
		if (poll(p, (nfds_t)np, 50) < 0 && errno != EINTR)
			return 1;
		if (!armed) {
			char path[4096];
			struct stat sb;
			snprintf(path, sizeof(path), "%s%u", trigger, n);
			armed = stat(path, &sb) == 0;
		}
		/* Walk backwards: drop() moves the last pair into slot i. */
		for (int i = npairs - 1; i >= 0; i--) {
			struct pollfd *pc = &p[1 + 2 * i], *ps = &p[2 + 2 * i];
			int dead = 0;
			if (pc->revents & (POLLIN | POLLHUP | POLLERR)) {
				ssize_t r = read(pairs[i].client, buf, sizeof(buf));
				dead = r <= 0 || write_all(pairs[i].server, buf, (size_t)r);
			}
			if (!dead && (ps->revents & (POLLIN | POLLHUP | POLLERR))) {
				ssize_t r = read(pairs[i].server, buf, sizeof(buf));
				if (r >= 64 && armed) {
					buf[offsets[(n - 1) % (sizeof(offsets) / sizeof(offsets[0]))]] ^= 0x5a;
					char path[4096];
					snprintf(path, sizeof(path), "%s%u.done", trigger, n);
					FILE *f = fopen(path, "w");
					if (f)
						fclose(f);
					armed = 0;
					n++;
				}
				dead = r <= 0 || write_all(pairs[i].client, buf, (size_t)r);
			}
			if (dead)
				drop(i);
		}
		/* New pairs after the walk: they have no pollfd this round. */
		if (p[0].revents & POLLIN) {
			int c = accept(lfd, NULL, NULL);
			int s = c >= 0 ? tcp_connect(upstream) : -1;
			if (s >= 0 && npairs < MAX_PAIRS) {
				pairs[npairs++] = (struct pair){ c, s };
			} else {
				if (c >= 0)
					close(c);
				if (s >= 0)
					close(s);
			}
		}
	}
usage:
	fprintf(stderr, "usage: spill-mangle --listen PORT --upstream PORT --trigger PREFIX\n");
	return 2;
}
