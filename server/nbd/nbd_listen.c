/* SPDX-License-Identifier: MIT */
#include "nbd.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <urcu.h>

#include "admission.h"
#include "log.h"
#include "nbd_buf.h"
#include "nbd_conn.h"
#include "nbd_export.h"
#include "nbd_log.h"
#include "nbd_stats.h"
#include "server.h"
#include "url.h"

#define NBD_DRAIN_S 5

static struct {
	int fd, stop_fd;
	pthread_t accept_thread;
	int started;
	pthread_mutex_t lock;
	pthread_cond_t gone;
	struct nbd_conn *conns;
	unsigned nconns;
	int stopping;
	struct server *srv;
} L = { .fd = -1, .stop_fd = -1, .lock = PTHREAD_MUTEX_INITIALIZER,
	.gone = PTHREAD_COND_INITIALIZER };

static int loopback_addr(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) == 127;
	if (sa->sa_family == AF_INET6)
		return IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)sa)->sin6_addr);
	return 0;
}

int nbd_listen(struct server *s, const char *hostport, int allow_remote, int *port)
{
	struct url u;
	char text[600];
	snprintf(text, sizeof(text), "tcp://%s", hostport);
	if (url_parse(text, 10809, &u) || strcmp(u.scheme, "tcp")) {
		log_error("--nbd %s: expected HOST:PORT", hostport);
		return -EINVAL;
	}
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE }, *res;
	char service[16];
	snprintf(service, sizeof(service), "%d", u.port);
	if (getaddrinfo(u.host, service, &hints, &res)) {
		log_error("--nbd %s: cannot resolve host", hostport);
		return -EINVAL;
	}
	/* NBD has no authentication here (no TLS): loopback unless told. */
	if (!allow_remote && !loopback_addr(res->ai_addr)) {
		freeaddrinfo(res);
		log_error("refusing to serve NBD on %s: NBD has no authentication "
			  "(add --nbd-insecure to allow it)", hostport);
		return -EPERM;
	}
	int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
	if (fd >= 0)
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (fd < 0 || bind(fd, res->ai_addr, res->ai_addrlen) || listen(fd, 64)) {
		int e = errno;
		log_error("--nbd %s: %s", hostport, strerror(e));
		freeaddrinfo(res);
		if (fd >= 0)
			close(fd);
		return -e;
	}
	freeaddrinfo(res);
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	getsockname(fd, (struct sockaddr *)&ss, &len);
	*port = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
					      : ((struct sockaddr_in6 *)&ss)->sin6_port);
	L.fd = fd;
	L.srv = s;
	nbd_exports_init(s);
	log_info("nbd: listening on %s port %d", u.host, *port);
	return 0;
}

static void *conn_main(void *arg)
{
	struct nbd_conn *c = arg;
	rcu_register_thread(); /* extent lookups and frees use RCU */
	struct nbd_export *x = nbd_handshake(c);
	if (!x && c->io.timed_out) {
		atomic_fetch_add(&nbd_stats.closed[NBD_CLOSED_HANDSHAKE_TIMEOUT], 1);
		log_debug("%s: nbd: closing connection: handshake timeout", c->peer);
	}
	if (x) {
		admission_authenticated(&c->adm);
		log_debug("%s: nbd: transmission started", c->peer);
		nbd_transmit(c, x);
		nbd_export_close(x);
		if (c->io.timed_out)
			atomic_fetch_add(&nbd_stats.closed[c->io.timed_out == NBD_IO_TIMED_OUT_IDLE
							   ? NBD_CLOSED_IDLE_TIMEOUT
							   : NBD_CLOSED_STALL_TIMEOUT], 1);
		log_debug("%s: nbd: closed after %llu requests (%llu refused)%s", c->peer,
			  (unsigned long long)c->requests, (unsigned long long)c->errors,
			  c->io.timed_out == NBD_IO_TIMED_OUT_IDLE ? ", idle timeout"
			  : c->io.timed_out ? ", stall timeout" : "");
	}
	rcu_unregister_thread();
	pthread_mutex_lock(&L.lock);
	if (c->prev)
		c->prev->next = c->next;
	else
		L.conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	L.nconns--;
	atomic_fetch_sub(&nbd_stats.open, 1);
	close(c->io.fd);
	admission_leave(&c->adm);
	pthread_cond_broadcast(&L.gone);
	pthread_mutex_unlock(&L.lock);
	free(c);
	return NULL;
}

/* A connection over --nbd-max-connections: closed at once and counted. */
static void refuse_locked(int fd, const char *host, const char *serv)
{
	close(fd);
	atomic_fetch_add(&nbd_stats.refused, 1);
	nbd_log_peer("%s:%s: nbd: refusing connection: %u NBD connections open "
		     "(--nbd-max-connections)", host, serv, L.nconns);
}

/* The connection's time limits, from the options. */
static void conn_limits(struct nbd_conn *c)
{
	const struct server_options *o = &L.srv->opt;
	c->io.deadline_ms = nbd_now_ms() + (int64_t)o->nbd_handshake_timeout_s * 1000;
	c->io.stall_ms = 0;
	c->stall_ms = (int)o->nbd_stall_timeout_s * 1000;
	c->idle_ms = (int)o->nbd_idle_timeout_s * 1000;
	c->attached_idle_ms = (int)o->nbd_attached_idle_timeout_s * 1000;
}

/* Accept one connection; the back-off in ms when out of descriptors. */
static unsigned accept_one(void)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int fd = accept4(L.fd, (struct sockaddr *)&ss, &len, SOCK_CLOEXEC);
	if (fd < 0)
		return admission_accept_failed("nbd", errno);
	struct admission_ticket adm;
	const char *why;
	if (admission_enter((struct sockaddr *)&ss, &adm, &why)) {
		close(fd);
		return 0;
	}
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	struct nbd_conn *c = calloc(1, sizeof(*c));
	char host[48] = "?", serv[8] = "?";
	getnameinfo((struct sockaddr *)&ss, len, host, sizeof(host), serv, sizeof(serv),
		    NI_NUMERICHOST | NI_NUMERICSERV);
	pthread_mutex_lock(&L.lock);
	if (c && !L.stopping && L.nconns >= L.srv->opt.nbd_max_conns) {
		refuse_locked(fd, host, serv);
		pthread_mutex_unlock(&L.lock);
		free(c);
		admission_leave(&adm);
		return 0;
	}
	if (!c || L.stopping) {
		pthread_mutex_unlock(&L.lock);
		if (!c)
			nbd_log_peer("%s:%s: nbd: refusing connection (out of memory)", host, serv);
		free(c);
		close(fd);
		admission_leave(&adm);
		return 0;
	}
	c->adm = adm;
	c->io.fd = fd;
	conn_limits(c);
	snprintf(c->peer, sizeof(c->peer), "%s:%s", host, serv);
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_t t;
	if (pthread_create(&t, &attr, conn_main, c)) {
		pthread_mutex_unlock(&L.lock);
		pthread_attr_destroy(&attr);
		nbd_log_peer("%s: nbd: refusing connection (no thread)", c->peer);
		close(fd);
		free(c);
		admission_leave(&adm);
		return 0;
	}
	pthread_attr_destroy(&attr);
	c->next = L.conns;
	if (L.conns)
		L.conns->prev = c;
	L.conns = c;
	L.nconns++;
	atomic_fetch_add(&nbd_stats.accepted, 1);
	atomic_fetch_add(&nbd_stats.open, 1);
	pthread_mutex_unlock(&L.lock);
	return 0;
}

static void *accept_main(void *arg)
{
	(void)arg;
	struct pollfd p[2] = { { L.fd, POLLIN, 0 }, { L.stop_fd, POLLIN, 0 } };
	unsigned backoff = 0;
	for (;;) {
		/* Out of descriptors: watch only the stop fd for a while. */
		int n = backoff ? poll(&p[1], 1, (int)backoff) : poll(p, 2, -1);
		if (n < 0)
			continue;
		if (p[1].revents)
			return NULL;
		backoff = n && p[0].revents ? accept_one() : 0;
	}
}

int nbd_start(void)
{
	if (L.fd < 0)
		return 0;
	nbd_buf_init(L.srv->opt.nbd_buffer_memory);
	if (nbd_stats_register(L.srv->metrics))
		return -ENOMEM;
	L.stop_fd = eventfd(0, EFD_CLOEXEC);
	if (L.stop_fd < 0)
		return -errno;
	int rc = pthread_create(&L.accept_thread, NULL, accept_main, NULL);
	if (rc)
		return -rc;
	L.started = 1;
	return 0;
}

void nbd_stop(void)
{
	if (L.started) {
		uint64_t one = 1;
		if (write(L.stop_fd, &one, sizeof(one)) < 0)
			log_warn("nbd: cannot wake the accept thread");
		pthread_join(L.accept_thread, NULL);
		L.started = 0;
	}
	if (L.fd >= 0)
		close(L.fd);
	if (L.stop_fd >= 0)
		close(L.stop_fd);
	L.fd = L.stop_fd = -1;
	/* End input on every connection: a thread finishes the request it is
	 * serving, sends its reply and sees EOF. One stuck sending to a client
	 * that does not read is cut off after NBD_DRAIN_S. */
	pthread_mutex_lock(&L.lock);
	L.stopping = 1;
	for (struct nbd_conn *c = L.conns; c; c = c->next)
		shutdown(c->io.fd, SHUT_RD);
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += NBD_DRAIN_S;
	while (L.nconns && pthread_cond_timedwait(&L.gone, &L.lock, &until) != ETIMEDOUT)
		;
	if (L.nconns) {
		log_warn("nbd: %u connection(s) still sending after %d s: cut off", L.nconns,
			 NBD_DRAIN_S);
		for (struct nbd_conn *c = L.conns; c; c = c->next)
			shutdown(c->io.fd, SHUT_RDWR);
	}
	while (L.nconns)
		pthread_cond_wait(&L.gone, &L.lock);
	pthread_mutex_unlock(&L.lock);
	nbd_exports_destroy();
	nbd_buf_destroy();
}
