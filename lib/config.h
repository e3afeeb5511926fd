/* SPDX-License-Identifier: MIT */
/*
 * Configuration text: sizes ("1G", "512M", "4096"), durations, and the
 * config file format shared by spillwayd and spillctl:
 *
 *   # comment
 *   key = value              (the same keys as the long command-line flags)
 *   [client NAME]            (quota section; keys: priority, reservation, limit)
 *
 * Parsing reports the file and line of the first error.
 */
#ifndef SPILLWAY_CONFIG_H
#define SPILLWAY_CONFIG_H

#include <stddef.h>
#include <stdint.h>

/* "1G" = 2^30; suffixes K M G T (optionally followed by "iB" or "B").
 * 0 or -EINVAL. */
int config_parse_size(const char *text, uint64_t *out);
/* Decimal integer in [min, max]. 0 or -EINVAL. */
int config_parse_int(const char *text, long min, long max, long *out);
/* "1G" style rendering into buf; exact when the value is a multiple. */
void config_format_size(uint64_t bytes, char *buf, size_t cap);

/*
 * Called for every key: section is "" outside any section, or the text after
 * '[' up to ']' ("client db1"). Return 0 or -errno with *why set; parsing
 * stops at the first error.
 */
typedef int (*config_entry_fn)(void *arg, const char *section, const char *key,
			       const char *value, const char **why);

/* 0, or -errno with a message "FILE:LINE: why" in err (cap bytes). */
int config_parse_file(const char *path, config_entry_fn fn, void *arg,
		      char *err, size_t cap);

#endif
