/* SPDX-License-Identifier: MIT */
/*
 * unix:///PATH: a local stream socket (a server's admin socket). Once
 * connected it is a socket stream like TCP (stream_socket.c); only
 * connecting differs. The server learns who we are from the kernel
 * (SO_PEERCRED), nothing is sent for it.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "transport.h"

static int unix_connect(const struct url *u, const struct transport_params *p,
			struct stream **out)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	if (strlen(u->host) >= sizeof(a.sun_path))
		return -ENAMETOOLONG;
	memcpy(a.sun_path, u->host, strlen(u->host) + 1);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* A local connect does not wait for a network: it succeeds, or fails
	 * at once (no such file, no permission, nobody listening, backlog full). */
	struct timeval tv = { p->timeout_ms / 1000, (p->timeout_ms % 1000) * 1000 };
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) ||
	    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv))) {
		int e = errno;
		close(fd);
		return -e;
	}
	return stream_socket_wrap(fd, p->timeout_ms, out);
}

const struct transport_ops transport_unix_ops = {
	.scheme = "unix",
	.connect = unix_connect,
};
