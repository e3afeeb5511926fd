/* SPDX-License-Identifier: MIT */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int config_parse_size(const char *text, uint64_t *out)
{
	char *end;
	if (!text || !isdigit((unsigned char)*text))
		return -EINVAL;
	errno = 0;
	unsigned long long v = strtoull(text, &end, 10);
	if (errno)
		return -EINVAL;
	unsigned shift = 0;
	switch (toupper((unsigned char)*end)) {
	case 'K': shift = 10; end++; break;
	case 'M': shift = 20; end++; break;
	case 'G': shift = 30; end++; break;
	case 'T': shift = 40; end++; break;
	}
	if (shift && (!strcmp(end, "iB") || !strcmp(end, "B")))
		end += strlen(end);
	if (*end)
		return -EINVAL;
	if (shift && v > (UINT64_MAX >> shift))
		return -EINVAL;
	*out = (uint64_t)v << shift;
	return 0;
}

int config_parse_int(const char *text, long min, long max, long *out)
{
	char *end;
	if (!text || !*text)
		return -EINVAL;
	errno = 0;
	long v = strtol(text, &end, 10);
	if (errno || *end || v < min || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

void config_format_size(uint64_t bytes, char *buf, size_t cap)
{
	static const char units[] = "KMGT";
	int u = -1;
	uint64_t v = bytes;
	while (u < 3 && v >= 1024 && v % 1024 == 0) {
		v /= 1024;
		u++;
	}
	if (u < 0)
		snprintf(buf, cap, "%llu", (unsigned long long)v);
	else
		snprintf(buf, cap, "%llu%c", (unsigned long long)v, units[u]);
}

static char *trim(char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	char *e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

/* True at end of file; peeks one character without consuming it. */
static int at_eof(FILE *f)
{
	int ch = getc(f);
	if (ch == EOF)
		return 1;
	ungetc(ch, f);
	return 0;
}

int config_parse_file(const char *path, config_entry_fn fn, void *arg,
		      char *err, size_t cap)
{
	FILE *f = fopen(path, "re");
	if (!f) {
		int e = errno;
		snprintf(err, cap, "%s: %s", path, strerror(e));
		return -e;
	}
	char line[1024], section[128] = "";
	int lineno = 0, rc = 0;
	const char *why = NULL;
	while (fgets(line, sizeof(line), f)) {
		lineno++;
		why = NULL;
		if (!strchr(line, '\n') && !at_eof(f)) {
			why = "line too long";
			rc = -EINVAL;
			goto fail;
		}
		char *hash = strchr(line, '#');
		if (hash)
			*hash = '\0';
		char *s = trim(line);
		if (!*s)
			continue;
		if (*s == '[') {
			char *close = strchr(s, ']');
			if (!close || close[1] || close - s - 1 >= (long)sizeof(section)) {
				why = "malformed section header";
				rc = -EINVAL;
				goto fail;
			}
			*close = '\0';
			snprintf(section, sizeof(section), "%s", trim(s + 1));
			continue;
		}
		char *eq = strchr(s, '=');
		if (!eq) {
			why = "expected key = value";
			rc = -EINVAL;
			goto fail;
		}
		*eq = '\0';
		char *key = trim(s), *value = trim(eq + 1);
		rc = fn(arg, section, key, value, &why);
		if (rc)
			goto fail;
	}
	fclose(f);
	return 0;
fail:
	snprintf(err, cap, "%s:%d: %s", path, lineno, why ? why : strerror(-rc));
	fclose(f);
	return rc;
}
