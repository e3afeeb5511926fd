/* SPDX-License-Identifier: MIT */
#include "spillctl_export.h"

void export_print(FILE *out, Spillway__ExportInfo *const *v, size_t n, int json)
{
	if (json) {
		/* Names are [A-Za-z0-9._:-]: nothing to escape. */
		fprintf(out, "[");
		for (size_t i = 0; i < n; i++)
			fprintf(out,
				"%s{\"name\":\"%s\",\"size_bytes\":%llu,\"client\":\"%s\","
				"\"used_bytes\":%llu,\"connections\":%u}",
				i ? "," : "", v[i]->name, (unsigned long long)v[i]->size_bytes,
				v[i]->client, (unsigned long long)v[i]->used_bytes, v[i]->connections);
		fprintf(out, "]\n");
		return;
	}
	fprintf(out, "%-24s %14s %14s %5s  %s\n", "EXPORT", "SIZE", "USED", "CONNS", "CLIENT");
	for (size_t i = 0; i < n; i++)
		fprintf(out, "%-24s %14llu %14llu %5u  %s\n", v[i]->name,
			(unsigned long long)v[i]->size_bytes, (unsigned long long)v[i]->used_bytes,
			v[i]->connections, v[i]->client);
}
