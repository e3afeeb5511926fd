/* SPDX-License-Identifier: MIT */
#include "wire_nbd.h"

#include "wire_list.h"

void wire_nbd_export(const struct nbd_export_info *x, Spillway__ExportInfo *out)
{
	spillway__export_info__init(out);
	out->name = (char *)x->name;
	out->client = (char *)x->client;
	out->size_bytes = x->size_bytes;
	out->used_bytes = x->used_bytes;
	out->connections = x->connections;
}

Spillway__ExportInfo **wire_nbd_export_list(const struct nbd_export_info *v, size_t n)
{
	Spillway__ExportInfo **ptrs = wire_list_alloc(n, sizeof(**ptrs));
	if (!ptrs)
		return NULL;
	Spillway__ExportInfo *msgs = wire_list_msgs(ptrs, n);
	for (size_t i = 0; i < n; i++) {
		wire_nbd_export(&v[i], &msgs[i]);
		ptrs[i] = &msgs[i];
	}
	return ptrs;
}
