/* SPDX-License-Identifier: MIT */
#include "wire_list.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

/* The pointers, rounded up so the messages after them are aligned. */
static size_t msgs_offset(size_t n)
{
	size_t a = _Alignof(max_align_t);
	return (n * sizeof(void *) + a - 1) / a * a;
}

void *wire_list_alloc(size_t n, size_t size)
{
	if (n > (SIZE_MAX / 2) / (sizeof(void *) + size))
		return NULL;
	return malloc(msgs_offset(n) + n * size + 1);
}

void *wire_list_msgs(void *list, size_t n)
{
	return (char *)list + msgs_offset(n);
}
