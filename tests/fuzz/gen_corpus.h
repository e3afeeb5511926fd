/* SPDX-License-Identifier: MIT */
/*
 * gen_corpus: seed corpora for every fuzz target. Each target's seeds come
 * from one generator (seeds_NAME) writing into the directory given on the
 * command line as seeds-NAME; gen_corpus.c maps names to generators.
 */
#ifndef SPILLWAY_GEN_CORPUS_H
#define SPILLWAY_GEN_CORPUS_H

#include <stddef.h>
#include <stdint.h>

#include "ctrl.h"

/* Write a seed file dir/name holding a then b (either may be empty); exits
 * on failure. */
void seed_put(const char *dir, const char *name, const void *a, size_t alen,
	      const void *b, size_t blen);

/* A byte stream of frames being built for a stream target's seed. */
struct seed_stream {
	uint8_t bytes[256 * 1024];
	size_t len;
};

/* Append one sealed frame (payload may be NULL when plen is 0). */
void seed_frame(struct seed_stream *s, uint16_t op, uint8_t flags, uint64_t req_id,
		uint64_t extent, uint32_t page, uint16_t npages, uint16_t status,
		const void *payload, uint32_t plen);
/* Append one sealed control frame: op SPILL_OP_CTRL, with SPILL_OP_REPLY
 * when reply is set. */
void seed_ctrl(struct seed_stream *s, int reply, uint64_t req_id, Spillway__Ctrl *m);
/* Write mode byte + stream as dir/name. */
void seed_stream_put(const char *dir, const char *name, uint8_t mode,
		     const struct seed_stream *s);

void seeds_codec(const char *frame_dir, const char *ctrl_dir); /* gen_corpus.c */
void seeds_nbd(const char *dir);
void seeds_config(const char *dir);                            /* gen_seeds_text.c */
void seeds_url(const char *dir);
void seeds_server_conn(const char *dir);                       /* gen_seeds_stream.c */
void seeds_client_rx(const char *dir);

#endif
