/* SPDX-License-Identifier: MIT */
/*
 * Text a server sent, made safe to print. A server (or anything answering
 * at its URL) chooses its id, version, URLs, event reasons and error
 * messages; printed raw, an escape sequence in them would drive the
 * operator's terminal, and a stray byte would break the JSON output.
 *
 * What passes unchanged: printable ASCII and well-formed UTF-8 outside the
 * control ranges. What does not: C0 controls (newline and tab included),
 * DEL, C1 controls (U+0080..U+009F) and every byte of malformed UTF-8.
 * In text they become \xNN (and a backslash becomes \\, so the escaping is
 * unambiguous); in JSON controls become \u00XX and malformed bytes U+FFFD.
 *
 * Every string spillctl prints that came from a server goes through here.
 */
#ifndef SPILLWAY_SPILLCTL_ESCAPE_H
#define SPILLWAY_SPILLCTL_ESCAPE_H

#include <stdio.h>

/*
 * s escaped for text output, in one of a few static buffers used in turn,
 * so that several can appear in one printf. Valid until ESCAPE_RING more
 * calls (spillctl is single-threaded). NULL reads as "". Past
 * ESCAPE_TEXT_MAX bytes of output the text is cut and ends in "...".
 */
#define ESCAPE_RING     8
#define ESCAPE_TEXT_MAX 4096
const char *escape_text(const char *s);

/* s as a JSON string literal, quotes included. NULL reads as "". */
void escape_json(FILE *out, const char *s);

#endif
