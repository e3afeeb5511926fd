/* SPDX-License-Identifier: MIT */
/*
 * A repeated message field in one allocation: the array of n pointers a
 * protobuf-c message holds, followed by the n messages they point to. One
 * free() of the pointer array releases both, so a reply built from plain
 * structs costs one allocation however many entries it has.
 */
#ifndef SPILLWAY_WIRE_LIST_H
#define SPILLWAY_WIRE_LIST_H

#include <stddef.h>

/* Room for n pointers and n messages of size bytes each, the pointers at
 * the start; never NULL for n == 0 unless out of memory. NULL when out of
 * memory or too large. */
void *wire_list_alloc(size_t n, size_t size);
/* Where the messages start in such an allocation of n. */
void *wire_list_msgs(void *list, size_t n);

#endif
