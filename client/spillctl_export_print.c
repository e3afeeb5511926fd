/* SPDX-License-Identifier: MIT */
#include "spillctl_escape.h"
#include "spillctl_export.h"

void export_print(FILE *out, Spillway__ExportInfo *const *v, size_t n, int json)
{
	/* Names come from the server: escaped like every server string. */
	if (json) {
		fprintf(out, "[");
		for (size_t i = 0; i < n; i++) {
			fprintf(out, "%s{\"name\":", i ? "," : "");
			escape_json(out, v[i]->name);
			fprintf(out, ",\"size_bytes\":%llu,\"client\":",
				(unsigned long long)v[i]->size_bytes);
			escape_json(out, v[i]->client);
			fprintf(out, ",\"used_bytes\":%llu,\"connections\":%u}",
				(unsigned long long)v[i]->used_bytes, v[i]->connections);
		}
		fprintf(out, "]\n");
		return;
	}
	fprintf(out, "%-24s %14s %14s %5s  %s\n", "EXPORT", "SIZE", "USED", "CONNS", "CLIENT");
	for (size_t i = 0; i < n; i++)
		fprintf(out, "%-24s %14llu %14llu %5u  %s\n", escape_text(v[i]->name),
			(unsigned long long)v[i]->size_bytes, (unsigned long long)v[i]->used_bytes,
			v[i]->connections, escape_text(v[i]->client));
}
