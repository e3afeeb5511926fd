/* SPDX-License-Identifier: MIT */
/*
 * The admin socket (see listen_unix.h). Runs on the main thread's event base:
 * accept, read the peer's credentials, hand the socket to a worker.
 * Invariant: the socket file exists while, and only while, this process
 * listens on it (made by start, removed by stop).
 */
#include "listen_unix.h"

#include <errno.h>
#include <grp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/listener.h>

#include "admission.h"
#include "listen_tcp.h"
#include "log.h"
#include "server.h"
#include "stream.h"
#include "worker.h"

#define LISTEN_UNIX_MAX_GROUPS 256

static struct {
	struct server *s;
	struct evconnlistener *l;
	struct listen_backoff *backoff;     /* out of descriptors: pause, not spin */
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	int have_gid;
	gid_t gid;                          /* --admin-group */
	atomic_uint_fast64_t accepted[2];   /* [0] other peers, [1] operators */
} lu;

/* Is the peer on fd root, or in the admin group? Asks the kernel, which
 * recorded the peer's credentials at connect(); nothing the peer sends. */
static int peer_is_operator(int fd, struct ucred *cred)
{
	socklen_t len = sizeof(*cred);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, cred, &len))
		return 0;
	if (cred->uid == 0)
		return 1;
	if (!lu.have_gid)
		return 0;
	if (cred->gid == lu.gid)
		return 1;
	gid_t groups[LISTEN_UNIX_MAX_GROUPS];
	len = sizeof(groups);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len))
		return 0; /* more groups than we look at, or an old kernel: no */
	for (size_t i = 0; i < len / sizeof(gid_t); i++)
		if (groups[i] == lu.gid)
			return 1;
	return 0;
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
		      int salen, void *arg)
{
	(void)l;
	(void)sa;
	(void)salen;
	(void)arg;
	struct ucred cred = { .pid = 0, .uid = (uid_t)-1, .gid = (gid_t)-1 };
	struct conn_origin o = { .node = -1 };
	o.local_operator = peer_is_operator(fd, &cred);
	snprintf(o.peer, sizeof(o.peer), "unix:uid=%u,pid=%d", (unsigned)cred.uid, (int)cred.pid);
	const char *why;
	if (admission_enter_local(cred.uid, &o.adm, &why)) {
		close(fd);
		return;
	}
	metrics_inc(&lu.accepted[o.local_operator], 1);
	if (stream_socket_wrap(fd, 0, &o.stream)) { /* it closed fd */
		admission_leave(&o.adm);
		return;
	}
	workers_hand_off(lu.s, &o);
}

/* An existing file at path: remove it if it is a socket nobody listens on.
 * 0, or -EADDRINUSE (a live server), or -EEXIST (not a socket). */
static int clear_stale(const char *path)
{
	struct stat st;
	if (lstat(path, &st))
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(st.st_mode))
		return -EEXIST;
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	int live = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0 || errno != ECONNREFUSED;
	close(fd);
	if (live)
		return -EADDRINUSE;
	return unlink(path) ? -errno : 0;
}

/* The parent directory, made 0755 when missing (one level). */
static int make_parent(const char *path)
{
	char dir[sizeof(lu.path)];
	snprintf(dir, sizeof(dir), "%s", path);
	char *slash = strrchr(dir, '/');
	if (!slash || slash == dir)
		return 0;
	*slash = '\0';
	if (mkdir(dir, 0755) && errno != EEXIST)
		return -errno;
	return 0;
}

static int bind_socket(struct server *s)
{
	const char *path = s->opt.admin_socket;
	int rc;
	if ((rc = make_parent(path)))
		return rc;
	if ((rc = clear_stale(path)))
		return rc;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
	/* Until the chmod below the file has the umask's mode: harmless, since
	 * every connection's credentials are checked; the mode only keeps
	 * others from connecting at all. */
	if (bind(fd, (struct sockaddr *)&a, sizeof(a))) {
		rc = -errno;
		close(fd);
		return rc;
	}
	if (chmod(path, 0660) || (lu.have_gid && chown(path, (uid_t)-1, lu.gid))) {
		rc = -errno;
		unlink(path);
		close(fd);
		return rc;
	}
	lu.l = evconnlistener_new(s->base, on_accept, NULL,
				  LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 64, fd);
	if (!lu.l) {
		unlink(path);
		close(fd);
		return -ENOMEM;
	}
	lu.backoff = listen_backoff_attach(lu.l, s->base, "admin socket");
	snprintf(lu.path, sizeof(lu.path), "%s", path);
	return 0;
}

int listen_unix_start(struct server *s)
{
	lu.s = s;
	int rc = metrics_add_counter(s->metrics, "spillway_admin_socket_connections_total",
				     "peer=\"operator\"",
				     "Admin socket connections, by what SO_PEERCRED said of the peer",
				     &lu.accepted[1]);
	rc |= metrics_add_counter(s->metrics, "spillway_admin_socket_connections_total",
				  "peer=\"other\"",
				  "Admin socket connections, by what SO_PEERCRED said of the peer",
				  &lu.accepted[0]);
	if (rc)
		return -ENOMEM;
	if (s->opt.admin_group[0]) { /* checked even without a socket: a typo shows */
		struct group *g = getgrnam(s->opt.admin_group);
		if (!g) {
			log_error("--admin-group %s: no such group", s->opt.admin_group);
			return -EINVAL;
		}
		lu.gid = g->gr_gid;
		lu.have_gid = 1;
	}
	if (!strcmp(s->opt.admin_socket, "none"))
		return 0;
	rc = bind_socket(s);
	const char *why = rc == -EADDRINUSE ? "another server listens there"
			: rc == -EEXIST	    ? "a file that is not a socket is in the way"
					    : strerror(-rc);
	if (rc && s->opt.admin_socket_given) {
		log_error("--admin-socket %s: %s", s->opt.admin_socket, why);
		return rc;
	}
	if (rc) {
		log_warn("no admin socket at %s (%s); operators need the admin key",
			 s->opt.admin_socket, why);
		return 0;
	}
	log_info("operators: unix://%s (root%s%s)", lu.path, lu.have_gid ? " and group " : "",
		 lu.have_gid ? s->opt.admin_group : "");
	return 0;
}

void listen_unix_stop(void)
{
	if (!lu.l)
		return;
	evconnlistener_free(lu.l);
	listen_backoff_free(lu.backoff);
	lu.backoff = NULL;
	lu.l = NULL;
	unlink(lu.path);
}
