/* SPDX-License-Identifier: MIT */
#ifndef SPILL_PAGER_CONFIG_H
#define SPILL_PAGER_CONFIG_H

#include <stddef.h>

#include "pager.h"

/* Fill x->cfg, x->urls, x->nservers, x->replicas, x->mode from cfg and the
 * environment. 0 or -errno (library codes included), err explains. */
int pager_config_resolve(spill_ctx *x, const struct spill_config *cfg, char *err, size_t cap);
void pager_config_free(spill_ctx *x);

#endif
