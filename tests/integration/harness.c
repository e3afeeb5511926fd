/* SPDX-License-Identifier: MIT */
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <setjmp.h>
#include <cmocka.h>

#define MAX_ARGS 64

unsigned srv_nofile_limit;
int srv_next_port;

int srv_start(struct srv *s, ...)
{
	const char *argv[MAX_ARGS];
	int n = 0;
	argv[n++] = SPILLWAYD_PATH;
	char listen[40];
	snprintf(listen, sizeof(listen), "tcp://127.0.0.1:%d", srv_next_port);
	srv_next_port = 0;
	argv[n++] = "--listen";
	argv[n++] = listen;
	argv[n++] = "--metrics";
	argv[n++] = "127.0.0.1:0";
	argv[n++] = "--ready-fd";
	argv[n++] = "3";
	/* Every server its own admin socket: the default path is one per host. */
	char sock[sizeof(s->admin_url) - 8];
	snprintf(sock, sizeof(sock), "/tmp/spillway-admin-%d-%d.sock", (int)getpid(), rand());
	snprintf(s->admin_url, sizeof(s->admin_url), "unix://%s", sock);
	argv[n++] = "--admin-socket";
	argv[n++] = sock;
	va_list ap;
	va_start(ap, s);
	const char *a;
	while ((a = va_arg(ap, const char *)) && n < MAX_ARGS - 1)
		argv[n++] = a;
	va_end(ap);
	argv[n] = NULL;

	snprintf(s->log_path, sizeof(s->log_path), "/tmp/spillwayd-test-%d-%d.log",
		 (int)getpid(), rand());
	int pipefd[2];
	if (pipe2(pipefd, O_CLOEXEC))
		return -errno;
	pid_t pid = fork();
	if (pid == 0) {
		/* Die with the test, even if an assertion skips srv_stop. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		int log = open(s->log_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		dup2(log, 1);
		dup2(log, 2);
		dup2(pipefd[1], 3); /* dup2 clears CLOEXEC on the copy */
		if (srv_nofile_limit) {
			struct rlimit rl = { srv_nofile_limit, srv_nofile_limit };
			setrlimit(RLIMIT_NOFILE, &rl);
		}
		execv(argv[0], (char **)argv);
		_exit(127);
	}
	close(pipefd[1]);
	char line[128] = "";
	ssize_t got = 0, r;
	while ((r = read(pipefd[0], line + got, sizeof(line) - 1 - (size_t)got)) > 0)
		got += r;
	close(pipefd[0]);
	line[got] = '\0';
	s->pid = pid;
	if (sscanf(line, "tcp=%d metrics=%d", &s->port, &s->metrics_port) != 2) {
		int st;
		waitpid(pid, &st, 0);
		s->pid = 0;
		return -EIO; /* it exited before serving: see the log */
	}
	snprintf(s->url, sizeof(s->url), "tcp://127.0.0.1:%d", s->port);
	return 0;
}

int srv_stop(struct srv *s)
{
	int st;
	if (s->pid <= 0)
		return -1;
	kill(s->pid, SIGTERM);
	waitpid(s->pid, &st, 0);
	s->pid = 0;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

void srv_kill(struct srv *s)
{
	if (s->pid > 0) {
		kill(s->pid, SIGKILL);
		waitpid(s->pid, NULL, 0);
		s->pid = 0;
		unlink(s->admin_url + strlen("unix://")); /* it had no time to */
	}
}

int srv_log_has(const struct srv *s, const char *text)
{
	FILE *f = fopen(s->log_path, "r");
	if (!f)
		return 0;
	char line[2048];
	int found = 0;
	while (!found && fgets(line, sizeof(line), f))
		found = strstr(line, text) != NULL;
	fclose(f);
	return found;
}

void srv_write_psk(struct srv *s, const char *key)
{
	snprintf(s->psk_path, sizeof(s->psk_path), "/tmp/spillway-psk-%d-%d", (int)getpid(), rand());
	int fd = open(s->psk_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, key, strlen(key)), (ssize_t)strlen(key));
	close(fd);
}

void srv_write_config(struct srv *s, const char *text)
{
	if (!s->config_path[0])
		snprintf(s->config_path, sizeof(s->config_path), "/tmp/spillway-conf-%d-%d",
			 (int)getpid(), rand());
	char tmp[160];
	snprintf(tmp, sizeof(tmp), "%s.new", s->config_path);
	FILE *f = fopen(tmp, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	assert_int_equal(rename(tmp, s->config_path), 0);
}

char *srv_http_get(const struct srv *s, const char *path)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)s->metrics_port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a))) {
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	char req[256];
	int n = snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\nHost: localhost\r\n\r\n", path);
	if (write(fd, req, (size_t)n) != n) {
		close(fd);
		return NULL;
	}
	size_t cap = 1 << 16, len = 0;
	char *buf = malloc(cap);
	ssize_t r;
	while (buf && (r = read(fd, buf + len, cap - len - 1)) > 0) {
		len += (size_t)r;
		if (cap - len < 1024) {
			char *nb = realloc(buf, cap *= 2);
			if (!nb) {
				free(buf);
				buf = NULL;
			}
			buf = nb;
		}
	}
	close(fd);
	if (!buf)
		return NULL;
	buf[len] = '\0';
	char *body = strstr(buf, "\r\n\r\n");
	if (!body) {
		free(buf);
		return NULL;
	}
	memmove(buf, body + 4, strlen(body + 4) + 1);
	return buf;
}

long long srv_metric(const struct srv *s, const char *series)
{
	char *text = srv_http_get(s, "/metrics");
	if (!text)
		return -1;
	long long v = -1;
	size_t n = strlen(series);
	for (char *line = text; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
		if (!strncmp(line, series, n) && line[n] == ' ') {
			v = atoll(line + n + 1);
			break;
		}
	}
	free(text);
	return v;
}

struct client *connect_to(const char *url, const char *name, const struct auth_psk *psk)
{
	struct client_opts o = { .psk = psk, .name = name, .timeout_ms = 20000 };
	struct client *c = NULL;
	char err[256];
	int rc = client_connect(url, &o, &c, err, sizeof(err));
	if (rc)
		fail_msg("connect %s as %s: %s (%d)", url, name ? name : "(admin)", err, rc);
	return c;
}

struct client *connect_as(const struct srv *s, const char *name, const struct auth_psk *psk)
{
	return connect_to(s->url, name, psk);
}

Spillway__Ctrl *admin_status(struct client *c)
{
	Spillway__AdminStatus a = SPILLWAY__ADMIN_STATUS__INIT;
	Spillway__Ctrl *rep = ctrl_request(c, SPILLWAY__CTRL__MSG_ADMIN_STATUS, &a);
	assert_int_equal(rep->msg_case, SPILLWAY__CTRL__MSG_ADMIN_STATUS_REPLY);
	return rep;
}

Spillway__Ctrl *ctrl_request(struct client *c, Spillway__Ctrl__MsgCase k, void *body)
{
	Spillway__Ctrl req = SPILLWAY__CTRL__INIT, *reply = NULL;
	req.msg_case = k;
	req.admin_status = body; /* a oneof: every member shares this pointer */
	char why[256] = "";
	if (client_ctrl(c, &req, &reply, why, sizeof(why)))
		fail_msg("control request %d: %s", (int)k, why);
	return reply;
}

static uint64_t mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ull;
	return x ^ (x >> 33);
}

void fill_page(uint8_t *p, uint64_t seed)
{
	uint64_t *w = (uint64_t *)p, x = mix(seed + 1);
	for (size_t i = 0; i < SPILL_PAGE_SIZE / 8; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		w[i] = x;
	}
}

int check_page(const uint8_t *p, uint64_t seed)
{
	uint8_t want[SPILL_PAGE_SIZE];
	fill_page(want, seed);
	return memcmp(p, want, SPILL_PAGE_SIZE) == 0;
}

char run_stderr[4096];

int run_capture(char *buf, size_t cap, const char *argv0, ...)
{
	const char *argv[MAX_ARGS];
	int n = 0;
	argv[n++] = argv0;
	va_list ap;
	va_start(ap, argv0);
	const char *a;
	while ((a = va_arg(ap, const char *)) && n < MAX_ARGS - 1)
		argv[n++] = a;
	va_end(ap);
	argv[n] = NULL;
	int out[2];
	if (pipe2(out, O_CLOEXEC))
		return -1;
	char errpath[] = "/tmp/spillway-test-stderr-XXXXXX";
	int errfd = mkstemp(errpath);
	unlink(errpath);
	pid_t pid = fork();
	if (pid == 0) {
		dup2(out[1], 1);
		dup2(errfd, 2);
		execv(argv[0], (char **)argv);
		_exit(127);
	}
	close(out[1]);
	size_t len = 0;
	ssize_t r;
	while ((r = read(out[0], buf + len, cap - 1 - len)) > 0)
		len += (size_t)r;
	/* Output beyond cap is dropped, not left to kill the child with SIGPIPE. */
	char drop[4096];
	while (r == 0 && len == cap - 1 && read(out[0], drop, sizeof(drop)) > 0)
		;
	buf[len] = '\0';
	close(out[0]);
	int st;
	waitpid(pid, &st, 0);
	ssize_t e = pread(errfd, run_stderr, sizeof(run_stderr) - 1, 0);
	run_stderr[e > 0 ? e : 0] = '\0';
	close(errfd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}
