/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for configuration text: lib/config.c (the file format,
 * sizes, whole numbers) and spillwayd's use of it in server/options.c (every
 * key, [client NAME] quota sections, [export NAME] sections, and the same
 * keys given as flags).
 *
 * The input is written to a memfd and read back through /proc/self/fd, the
 * way spillwayd reads --config. Nothing may crash, overrun or leak; an error
 * carries a message; every entry handed to a callback is trimmed, free of
 * comments and line breaks; a size that parses formats to text that parses
 * to the same size.
 */
#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config.h"
#include "ctrl.h"
#include "fuzz_check.h"
#include "log.h"
#include "options.h"

#define MAX_FLAGS 16

static int fd = -1;
static char path[64];

struct seen {
	int n;
	char *flags[MAX_FLAGS]; /* "--key=value" for the first entries */
};

static int trimmed(const char *s)
{
	size_t n = strlen(s);
	return n == 0 || (!isspace((unsigned char)s[0]) && !isspace((unsigned char)s[n - 1]));
}

static void check_size_text(const char *text)
{
	uint64_t v, back;
	if (config_parse_size(text, &v))
		return;
	char shown[32];
	config_format_size(v, shown, sizeof(shown));
	CHECK(config_parse_size(shown, &back) == 0);
	CHECK(back == v);
}

static int entry(void *arg, const char *section, const char *key, const char *value,
		 const char **why)
{
	struct seen *s = arg;
	CHECK(strlen(section) < 128);
	CHECK(trimmed(section) && trimmed(key) && trimmed(value));
	CHECK(!strchr(key, '#') && !strchr(value, '#') && !strchr(key, '\n') &&
	      !strchr(value, '\n'));
	CHECK(!strchr(key, '='));
	check_size_text(value);
	long n;
	if (config_parse_int(value, -1000, 1000, &n) == 0)
		CHECK(n >= -1000 && n <= 1000);
	if (!section[0] && s->n < MAX_FLAGS) {
		size_t len = strlen(key) + strlen(value) + 4;
		char *f = malloc(len);
		if (f) {
			snprintf(f, len, "--%s=%s", key, value);
			s->flags[s->n++] = f;
		}
	}
	/* Stop at some entries, as a callback with a complaint would. */
	if (!strcmp(key, "stop")) {
		*why = "stop here";
		return -EINVAL;
	}
	return 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fd = memfd_create("fuzz-config", MFD_CLOEXEC);
	if (fd < 0)
		abort();
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	log_set_level(LOG_ERROR);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (ftruncate(fd, 0) || pwrite(fd, data, size, 0) != (ssize_t)size)
		abort();
	char err[512];

	struct seen s = { 0 };
	err[0] = '\0';
	int rc = config_parse_file(path, entry, &s, err, sizeof(err));
	CHECK(rc <= 0);
	if (rc)
		CHECK(err[0] != '\0' && memchr(err, 0, sizeof(err)));

	char **names;
	struct reg_quota *q;
	size_t n;
	if (options_load_quotas(path, &names, &q, &n, err, sizeof(err)) == 0) {
		for (size_t i = 0; i < n; i++) {
			CHECK(ctrl_name_valid(names[i]));
			if (q[i].has_priority)
				CHECK(q[i].priority >= -1000 && q[i].priority <= 1000);
		}
		options_free_quotas(names, q, n);
	} else {
		CHECK(err[0] != '\0');
	}

	struct opt_export *ex;
	if (options_load_exports(path, &ex, &n, err, sizeof(err)) == 0) {
		for (size_t i = 0; i < n; i++) {
			CHECK(ctrl_export_name_valid(ex[i].name));
			CHECK(ex[i].size && ex[i].size % 4096 == 0);
		}
		free(ex);
	}

	/* The whole server option set: the file, then its top-level entries
	 * again as flags (which override it). */
	char *argv[3 + MAX_FLAGS + 1];
	int argc = 0;
	argv[argc++] = "spillwayd";
	argv[argc++] = "--config";
	argv[argc++] = path;
	for (int i = 0; i < s.n; i++)
		argv[argc++] = s.flags[i];
	argv[argc] = NULL;
	static struct server_options o;
	rc = options_parse(argc, argv, &o, err, sizeof(err));
	if (rc == 0) {
		CHECK(o.nlisten >= 1 && o.nlisten <= OPT_MAX_LISTEN);
		CHECK(o.npeers >= 0 && o.npeers <= OPT_MAX_PEERS);
		CHECK(o.extent_size >= 4096 && !(o.extent_size & (o.extent_size - 1)));
		CHECK(o.capacity >= o.extent_size);
		CHECK(o.low_pct <= o.high_pct);
		CHECK(o.max_inflight >= 1 && o.max_inflight <= 4096);
	} else if (rc < 0) {
		CHECK(err[0] != '\0');
	}
	for (int i = 0; i < s.n; i++)
		free(s.flags[i]);
	log_set_level(LOG_ERROR);
	return 0;
}
