/* SPDX-License-Identifier: MIT */
/*
 * Connections for spillway.ko: connect, Hello, authenticate and register in
 * userspace with the core client library, then hand the socket to the
 * module (SPILL_IOC_SOCK), as nbd-client does.
 *
 * Every connection of one attachment to one server uses the same identity
 * (the first registration's token), so they share its extents. The token is
 * also kept in /run/spillway, so that attaching again under the same name
 * within the server's grace period resumes the identity instead of being
 * refused as a name in use. When a server has forgotten the identity (it
 * restarted, or the grace period ran out), a new one is registered and the
 * next socket carries SPILL_SOCK_RESET: the module then stops trusting every
 * page it had stored there. /run/spillway also holds the lock that makes
 * one resident spillctl per attachment name.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "client.h"
#include "spillctl_swap.h"

#define TOKEN_DIR "/run/spillway"

/*
 * One resident spillctl per attachment name: it holds this lock for its
 * whole life. Returns the locked fd, -EWOULDBLOCK if another holds it, or
 * another -errno.
 */
int swap_lock(const char *name)
{
	char path[256];
	snprintf(path, sizeof(path), TOKEN_DIR "/swap.%s.lock", name);
	(void)mkdir(TOKEN_DIR, 0700);
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	if (flock(fd, LOCK_EX | LOCK_NB)) {
		int e = errno;
		close(fd);
		return -e;
	}
	return fd;
}

static void token_path(const struct swap_attach *a, unsigned i, char *buf, size_t cap)
{
	snprintf(buf, cap, TOKEN_DIR "/swap.%s.%u.token", a->name, i);
}

static void token_load(struct swap_attach *a, unsigned i)
{
	char path[256];
	token_path(a, i, path, sizeof(path));
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	struct swap_server *s = &a->srv[i];
	s->have_token = read(fd, s->token, sizeof(s->token)) == (ssize_t)sizeof(s->token);
	close(fd);
}

/* Best effort: without it, a re-attach within the grace period is refused. */
static void token_save(const struct swap_attach *a, unsigned i)
{
	char path[256], tmp[272];
	token_path(a, i, path, sizeof(path));
	snprintf(tmp, sizeof(tmp), "%s.new", path);
	(void)mkdir(TOKEN_DIR, 0700);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return;
	int ok = write(fd, a->srv[i].token, CTRL_TOKEN_BYTES) == CTRL_TOKEN_BYTES;
	close(fd);
	if (!ok || rename(tmp, path))
		unlink(tmp);
}

static int run_modprobe(void)
{
	pid_t pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);
		if (null >= 0) {
			dup2(null, 1);
			dup2(null, 2);
		}
		execlp("modprobe", "modprobe", "spillway", (char *)NULL);
		_exit(127);
	}
	int st;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	return 0;
}

/* Open the control device; with load_module, try modprobe once if it is missing. */
int swap_ctl_open(int load_module)
{
	int fd = open(SWAP_CTL_PATH, O_RDWR | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT && load_module) {
		run_modprobe();
		for (int i = 0; i < 100 && fd < 0 && errno == ENOENT; i++) {
			fd = open(SWAP_CTL_PATH, O_RDWR | O_CLOEXEC);
			if (fd < 0 && errno == ENOENT)
				usleep(10000); /* devtmpfs creates the node asynchronously */
		}
	}
	return fd < 0 ? -errno : fd;
}

int swap_status(int ctl, uint32_t index, struct spill_ioc_status *st)
{
	memset(st, 0, sizeof(*st));
	st->index = index;
	return ioctl(ctl, SPILL_IOC_STATUS, st) ? -errno : 0;
}

/* Notice a dead server within about 30 s even on an idle connection. */
static void tune_socket(int fd)
{
	int on = 1, idle = 10, intvl = 5, cnt = 3;
	unsigned user_timeout = 30000;
	setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
	setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout, sizeof(user_timeout));
}

/* A new device must not inherit pages of an earlier attachment's identity. */
static int free_resumed(struct client *c, char *err, size_t cap)
{
	size_t n;
	const struct client_extent *e = client_resumed_extents(c, &n);
	uint64_t ids[1024];
	while (n) {
		unsigned k = n < 1024 ? (unsigned)n : 1024;
		for (unsigned j = 0; j < k; j++)
			ids[j] = e[j].id;
		int rc = client_free_extents(c, ids, k);
		if (rc) {
			snprintf(err, cap, "freeing the extents of an earlier attachment: %s",
				 strerror(-rc));
			return rc;
		}
		e += k;
		n -= k;
	}
	return 0;
}

int swap_add_connection(struct swap_attach *a, unsigned i, uint32_t flags, int fresh_device,
			char *err, size_t cap)
{
	struct swap_server *s = &a->srv[i];
	char why[256] = "";
	if (!s->have_token)
		token_load(a, i);
	/* The priority asked (--priority; -1000 by default, see parse_attach).
	 * spillway.ko answers Reclaim and Drain by moving pages. (An operator's
	 * quota for the name still wins.) */
	struct client_opts o = {
		.psk = a->psk, .name = a->name, .timeout_ms = 10000, .priority = a->priority,
		.token = s->have_token ? s->token : NULL,
	};
	struct client *c;
	int rc = client_connect(s->url, &o, &c, why, sizeof(why));
	if (rc == -ENOENT && o.token) {
		/* The server no longer knows this identity: register a new one. */
		o.token = NULL;
		rc = client_connect(s->url, &o, &c, why, sizeof(why));
		if (!rc && !fresh_device)
			s->need_reset = 1;
	}
	if (rc) {
		snprintf(err, cap, "%s: %s", s->url, why[0] ? why : strerror(-rc));
		return rc;
	}
	if (a->extent_bytes && client_extent_bytes(c) != a->extent_bytes) {
		snprintf(err, cap, "%s: extent size %llu differs from the other servers' %llu",
			 s->url, (unsigned long long)client_extent_bytes(c),
			 (unsigned long long)a->extent_bytes);
		client_close(c);
		return -EINVAL;
	}
	a->extent_bytes = client_extent_bytes(c);
	if (!s->have_token || memcmp(s->token, client_token(c), CTRL_TOKEN_BYTES)) {
		memcpy(s->token, client_token(c), CTRL_TOKEN_BYTES);
		s->have_token = 1;
		token_save(a, i);
	}
	if (fresh_device && client_resumed(c) && (rc = free_resumed(c, err, cap))) {
		client_close(c);
		return rc;
	}
	s->window = client_window(c);
	tune_socket(client_fd(c));
	int fd = client_release_fd(c);
	if (fd < 0) {
		snprintf(err, cap, "%s: cannot hand the connection over: %s", s->url, strerror(-fd));
		return fd;
	}
	if (a->ctl < 0) /* before the device exists: just register the identity */
		return close(fd), 0;
	if (s->need_reset)
		flags |= SPILL_SOCK_RESET;
	struct spill_ioc_sock arg = {
		.id = a->id, .index = a->index, .server = i, .fd = fd,
		.window = s->window, .flags = flags,
	};
	rc = ioctl(a->ctl, SPILL_IOC_SOCK, &arg) ? -errno : 0;
	close(fd); /* the module holds its own reference */
	if (rc) {
		snprintf(err, cap, "%s: spillway.ko refused the connection: %s", s->url,
			 strerror(-rc));
		return rc;
	}
	s->need_reset = 0;
	return 0;
}
