/* SPDX-License-Identifier: MIT */
/*
 * spill-fault: the fault proxy (fault_proxy.h) as a program, for shell and VM
 * scenarios (spillctl swap attach, spillway.ko) that cannot link it.
 *
 *   spill-fault --upstream PORT [--ready-fd N]
 *
 * Listens on a free 127.0.0.1 port and forwards to 127.0.0.1:PORT; once
 * listening it writes "port=N\n" to the ready fd (default: stdout). Then it
 * reads one command per line from stdin and answers each with one line on
 * stdout: "ok", a number, "timeout", or "error: WHY". End of input or "quit"
 * stops it. CONN is a connection number (0 = first accepted) or "all"; DIR is
 * c2s, s2c (or both, where allowed); OP an op name (write, read, ping, ctrl,
 * invalidate, alloc, free, key), a number, or "any".
 *
 *   cut CONN DIR OP NTH KEEP fin|rst    KEEP: bytes of the frame sent first,
 *                                       "half" (header + half its payload),
 *                                       or "all"
 *   corrupt CONN DIR OP NTH OFFSET
 *   forge CONN OP NTH STATUS keep|drop   rewrite a reply's status (a number
 *                                       or a name: ABSENT, ENOREG, ...),
 *                                       checksum fixed; drop: without its
 *                                       payload; NTH 0: the next one, once
 *   stall CONN DIR        resume CONN DIR
 *   partition CONN        heal CONN resume|dead
 *   delay CONN DIR USEC   clear CONN
 *   count EVENT CONN      wait EVENT CONN MIN TIMEOUT_MS
 *   frames CONN DIR OP    conns
 *
 * EVENT: accept, eof, closed, cut, corrupt, drop, forge. A shell drives it through
 * two fifos:  exec 4>in 5<out; echo "stall all both" >&4; read -r r <&5
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "fault_proxy.h"
#include "frame.h"

#define MAX_WORDS 8

static int parse_conn(const char *s, int *conn)
{
	if (!strcmp(s, "all")) {
		*conn = FAULT_ALL;
		return 0;
	}
	char *end;
	long v = strtol(s, &end, 10);
	if (*end || v < 0 || v > 1000000)
		return -EINVAL;
	*conn = (int)v;
	return 0;
}

static int parse_dir(const char *s, enum fault_dir *dir)
{
	if (!strcmp(s, "c2s"))
		*dir = FAULT_C2S;
	else if (!strcmp(s, "s2c"))
		*dir = FAULT_S2C;
	else if (!strcmp(s, "both"))
		*dir = FAULT_BOTH;
	else
		return -EINVAL;
	return 0;
}

static int parse_op(const char *s, uint16_t *op)
{
	if (!strcmp(s, "any")) {
		*op = FAULT_ANY_OP;
		return 0;
	}
	for (uint16_t o = 1; o < 16; o++) {
		if (!strcmp(s, frame_op_name(o))) {
			*op = o;
			return 0;
		}
	}
	char *end;
	unsigned long v = strtoul(s, &end, 0);
	if (*end || v == 0 || v > 0x7fff)
		return -EINVAL;
	*op = (uint16_t)v;
	return 0;
}

static int parse_ulong(const char *s, unsigned long *v)
{
	char *end;
	errno = 0;
	*v = strtoul(s, &end, 10);
	return *end || !*s || errno || s[0] == '-' ? -EINVAL : 0;
}

static int parse_event(const char *s, enum fault_event *ev)
{
	static const char *const names[FAULT_EV_COUNT] = {
		[FAULT_EV_ACCEPT] = "accept", [FAULT_EV_EOF] = "eof",
		[FAULT_EV_CLOSED] = "closed", [FAULT_EV_CUT] = "cut",
		[FAULT_EV_CORRUPT] = "corrupt", [FAULT_EV_DROP] = "drop",
		[FAULT_EV_FORGE] = "forge",
	};
	for (int i = 0; i < FAULT_EV_COUNT; i++) {
		if (!strcmp(s, names[i])) {
			*ev = (enum fault_event)i;
			return 0;
		}
	}
	return -EINVAL;
}

/* A status by number or by its name in wire.h without SPILL_ST_ (ABSENT,
 * ENOREG, EINTERNAL, ...), in any case. */
static int parse_status(const char *s, uint16_t *status)
{
	static const char *const names[SPILL_ST_MAX] = {
		[SPILL_ST_OK] = "OK", [SPILL_ST_EPROTO] = "EPROTO", [SPILL_ST_EAUTH] = "EAUTH",
		[SPILL_ST_ENOREG] = "ENOREG", [SPILL_ST_ENOEXTENT] = "ENOEXTENT",
		[SPILL_ST_EACCES] = "EACCES", [SPILL_ST_ERANGE] = "ERANGE",
		[SPILL_ST_ENOSPC] = "ENOSPC", [SPILL_ST_EDQUOT] = "EDQUOT",
		[SPILL_ST_ABSENT] = "ABSENT", [SPILL_ST_EBUSY] = "EBUSY",
		[SPILL_ST_EINVAL] = "EINVAL", [SPILL_ST_ENOTSUP] = "ENOTSUP",
		[SPILL_ST_EINTERNAL] = "EINTERNAL", [SPILL_ST_ESTALE] = "ESTALE",
	};
	for (uint16_t st = 0; st < SPILL_ST_MAX; st++) {
		if (names[st] && !strcasecmp(s, names[st])) {
			*status = st;
			return 0;
		}
	}
	unsigned long v;
	if (parse_ulong(s, &v) || v >= SPILL_ST_MAX)
		return -EINVAL;
	*status = (uint16_t)v;
	return 0;
}

/* Run one command; print its answer. Returns 1 on quit. */
static int run_command(struct fault_proxy *p, char **w, int n)
{
	int conn = 0, rc = -EINVAL;
	enum fault_dir dir = FAULT_C2S;
	enum fault_event ev = FAULT_EV_ACCEPT;
	uint16_t op = 0, status = 0;
	unsigned long a = 0, b = 0;
	const char *cmd = n ? w[0] : "";
	if (!strcmp(cmd, "quit"))
		return 1;
	if (!strcmp(cmd, "cut") && n == 7 && !parse_conn(w[1], &conn) && !parse_dir(w[2], &dir) &&
	    !parse_op(w[3], &op) && !parse_ulong(w[4], &a) &&
	    (!strcmp(w[5], "half") || !strcmp(w[5], "all") || !parse_ulong(w[5], &b)) &&
	    (!strcmp(w[6], "fin") || !strcmp(w[6], "rst"))) {
		size_t keep = !strcmp(w[5], "half") ? FAULT_KEEP_HALF
			      : !strcmp(w[5], "all") ? FAULT_KEEP_ALL : b;
		rc = fault_cut(p, conn, dir, op, (unsigned)a, keep,
			       strcmp(w[6], "rst") ? FAULT_FIN : FAULT_RST);
	} else if (!strcmp(cmd, "corrupt") && n == 6 && !parse_conn(w[1], &conn) &&
		   !parse_dir(w[2], &dir) && !parse_op(w[3], &op) && !parse_ulong(w[4], &a) &&
		   !parse_ulong(w[5], &b)) {
		rc = fault_corrupt(p, conn, dir, op, (unsigned)a, b);
	} else if (!strcmp(cmd, "forge") && n == 6 && !parse_conn(w[1], &conn) &&
		   !parse_op(w[2], &op) && !parse_ulong(w[3], &a) && !parse_status(w[4], &status) &&
		   (!strcmp(w[5], "keep") || !strcmp(w[5], "drop"))) {
		rc = fault_forge(p, conn, op, (unsigned)a, status, !strcmp(w[5], "keep"));
	} else if ((!strcmp(cmd, "stall") || !strcmp(cmd, "resume")) && n == 3 &&
		   !parse_conn(w[1], &conn) && !parse_dir(w[2], &dir)) {
		rc = cmd[0] == 's' ? fault_stall(p, conn, dir) : fault_resume(p, conn, dir);
	} else if (!strcmp(cmd, "partition") && n == 2 && !parse_conn(w[1], &conn)) {
		rc = fault_partition(p, conn);
	} else if (!strcmp(cmd, "heal") && n == 3 && !parse_conn(w[1], &conn) &&
		   (!strcmp(w[2], "resume") || !strcmp(w[2], "dead"))) {
		rc = fault_heal(p, conn, strcmp(w[2], "dead") ? FAULT_HEAL_RESUME : FAULT_HEAL_DEAD);
	} else if (!strcmp(cmd, "delay") && n == 4 && !parse_conn(w[1], &conn) &&
		   !parse_dir(w[2], &dir) && !parse_ulong(w[3], &a) && a <= 0xffffffffu) {
		rc = fault_delay(p, conn, dir, (unsigned)a);
	} else if (!strcmp(cmd, "clear") && n == 2 && !parse_conn(w[1], &conn)) {
		rc = fault_clear(p, conn);
	} else if (!strcmp(cmd, "count") && n == 3 && !parse_event(w[1], &ev) &&
		   !parse_conn(w[2], &conn)) {
		printf("%ld\n", fault_count(p, ev, conn));
		return 0;
	} else if (!strcmp(cmd, "frames") && n == 4 && !parse_conn(w[1], &conn) &&
		   !parse_dir(w[2], &dir) && !parse_op(w[3], &op)) {
		printf("%ld\n", fault_frames(p, conn, dir, op));
		return 0;
	} else if (!strcmp(cmd, "conns") && n == 1) {
		printf("%d\n", fault_conns(p));
		return 0;
	} else if (!strcmp(cmd, "wait") && n == 5 && !parse_event(w[1], &ev) &&
		   !parse_conn(w[2], &conn) && !parse_ulong(w[3], &a) && !parse_ulong(w[4], &b) &&
		   b <= 3600000) {
		rc = fault_wait_count(p, ev, conn, (long)a, (int)b);
		puts(rc == -ETIMEDOUT ? "timeout" : rc ? "error: bad wait" : "ok");
		return 0;
	} else {
		puts("error: unknown command or bad arguments (see spill-fault --help)");
		return 0;
	}
	if (rc)
		printf("error: %s\n", strerror(-rc));
	else
		puts("ok");
	return 0;
}

static void usage(FILE *f)
{
	fputs("usage: spill-fault --upstream PORT [--ready-fd N]\n"
	      "commands on stdin, one per line; see the comment in tests/fault/cli/spill_fault.c\n"
	      "or docs/testing.md (Fault injection)\n", f);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "upstream", required_argument, NULL, 'u' },
		{ "ready-fd", required_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int upstream = 0, ready_fd = 1, c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'u': upstream = atoi(optarg); break;
		case 'r': ready_fd = atoi(optarg); break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (upstream <= 0 || upstream > 65535 || ready_fd < 0 || optind != argc) {
		usage(stderr);
		return 2;
	}
	struct fault_proxy *p;
	int rc = fault_proxy_start(&p, upstream);
	if (rc) {
		fprintf(stderr, "spill-fault: listen: %s\n", strerror(-rc));
		return 1;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	char line[512];
	int n = snprintf(line, sizeof(line), "port=%d\n", fault_proxy_port(p));
	if (write(ready_fd, line, (size_t)n) != n) {
		fprintf(stderr, "spill-fault: ready fd %d: %s\n", ready_fd, strerror(errno));
		fault_proxy_stop(p);
		return 1;
	}
	if (ready_fd != 1)
		close(ready_fd);
	while (fgets(line, sizeof(line), stdin)) {
		char *w[MAX_WORDS + 1], *save = NULL;
		int nw = 0;
		for (char *t = strtok_r(line, " \t\r\n", &save); t && nw <= MAX_WORDS;
		     t = strtok_r(NULL, " \t\r\n", &save))
			w[nw++] = t;
		if (nw > MAX_WORDS) {
			puts("error: too many words");
			continue;
		}
		if (nw && run_command(p, w, nw))
			break;
	}
	fault_proxy_stop(p);
	return 0;
}
