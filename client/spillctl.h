/* SPDX-License-Identifier: MIT */
/* spillctl: shared between the command dispatcher, the cluster commands and
 * their output formatting. */
#ifndef SPILLWAY_SPILLCTL_H
#define SPILLWAY_SPILLCTL_H

#include <getopt.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "client.h"
#include "spillctl_escape.h"
#include "spillway.pb-c.h"

#define EXIT_USAGE 2

/* The global options, in force for every command. */
struct ctl {
	const char *server;
	const char *tcp_server;  /* the same, except the admin socket default: tcp:// */
	const char *psk_file;
	int json;
};

/* "spillctl: " fmt " (see spillctl --help)" on stderr; returns EXIT_USAGE. */
int ctl_usage_error(const char *fmt, const char *arg);
/* Admin session (ctl->psk_file) to url; 0, or -errno with the reason in err.
 * Here and in ctl_call, err is escaped (spillctl_escape.h): print it as is. */
int ctl_open(const struct ctl *ctl, const char *url, struct client **c, char *err, size_t cap);
/* The same; 0, or 1 with the reason on stderr. */
int ctl_connect(const struct ctl *ctl, const char *url, struct client **c);
/* One control round trip whose reply must be of case want. 0 with *rep set
 * (free with ctrl_free), or -errno with the reason in err. */
int ctl_call(struct client *c, Spillway__Ctrl *req, Spillway__Ctrl__MsgCase want,
	     Spillway__Ctrl **rep, char *err, size_t cap);
/* AdminStatus; 0, or 1 with the reason on stderr. */
int ctl_admin_status(struct client *c, Spillway__Ctrl **rep);
/* A listing in pages by name (AdminStatus, AdminClusterStatus): ask fetches
 * the page after a name (0, or 1 with the reason on stderr), next is a
 * page's next_after ("" on the last), merge moves a page's items into the
 * first page (0 or -ENOMEM). 0 with every item in *rep (free with
 * ctrl_free), or 1 with the reason on stderr. */
struct ctl_pages {
	int (*ask)(void *arg, const char *after, Spillway__Ctrl **page);
	const char *(*next)(const Spillway__Ctrl *page);
	int (*merge)(Spillway__Ctrl *all, Spillway__Ctrl *page);
	void *arg;
};
int ctl_all_pages(const struct ctl_pages *p, Spillway__Ctrl **rep);
/* Append the *n_page pointers at page to the pointer array whose address
 * is all (*n_all long); the page is left with none. 0 or -ENOMEM. */
int ctl_append_ptrs(void *all, size_t *n_all, const void *page, size_t *n_page);
/* getopt_long (optstring ":") answering bad options with a one-line message:
 * the option, -1 at the end, or '?' after the message. Set optind = 0
 * before the first call: glibc then starts afresh, permuting, instead of
 * carrying on in main's "+" (stop at the first word) mode. */
int ctl_getopt(int argc, char **argv, const struct option *opts, const char *cmd);
/* No options and exactly n arguments after argv[0]; 0 or EXIT_USAGE. */
int ctl_positional(int argc, char **argv, int n, const char *cmd);
/* Parse "client set NAME [options]" (argv[0] is "set"); 0 or EXIT_USAGE. */
int ctl_parse_client_set(int argc, char **argv, Spillway__AdminClientSet *s);

/* Human tables or stable JSON for each report. */
void print_status(FILE *out, const Spillway__AdminStatusReply *r, int json);
void print_clients(FILE *out, Spillway__ClientStats *const *c, size_t n, int json);
void print_client(FILE *out, const Spillway__ClientStats *c, int json);
void ctl_json_client(FILE *out, const Spillway__ClientStats *c);
/* [each(v[0]),each(v[1]),...] */
void ctl_json_array(FILE *out, const void *const *v, size_t n,
		    void (*each)(FILE *out, const void *elem));
/* "12.0 MiB": binary units, one decimal; plain bytes below 1 KiB. */
void human_size(uint64_t b, char *buf, size_t cap);
/* human_size, or "-" for 0 (a limit of 0 is none). */
void human_limit(uint64_t limit, char *buf, size_t cap);
/* 100 * part / whole, 0 when whole is 0. */
double percent(uint64_t part, uint64_t whole);

#endif
