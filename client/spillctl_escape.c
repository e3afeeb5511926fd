/* SPDX-License-Identifier: MIT */
/*
 * Escaping of server-supplied text for spillctl's output; the rules are in
 * spillctl_escape.h. One decoder (safe_len) decides what may pass; text and
 * JSON differ only in how the rest is written.
 */
#include "spillctl_escape.h"

#include <stdint.h>
#include <string.h>

/*
 * How many bytes at s form one character that may be printed as it is:
 * printable ASCII, or a well-formed UTF-8 sequence (no overlong form, no
 * surrogate, at most U+10FFFF) that is not a C1 control. 0: escape s[0].
 */
static size_t safe_len(const unsigned char *s)
{
	if (s[0] >= 0x20 && s[0] < 0x7f)
		return 1;
	size_t n;
	uint32_t cp, min;
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		n = 2, cp = s[0] & 0x1f, min = 0x80;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		n = 3, cp = s[0] & 0x0f, min = 0x800;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		n = 4, cp = s[0] & 0x07, min = 0x10000;
	} else {
		return 0; /* C0, DEL, a continuation byte, or never valid */
	}
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80) /* also stops at the terminating NUL */
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff) || cp <= 0x9f)
		return 0;
	return n;
}

const char *escape_text(const char *s)
{
	static char ring[ESCAPE_RING][ESCAPE_TEXT_MAX + 1];
	static unsigned next;
	char *buf = ring[next++ % ESCAPE_RING];
	const unsigned char *p = (const unsigned char *)(s ? s : "");
	size_t len = 0;
	while (*p) {
		char piece[8];
		size_t n = safe_len(p), plen;
		if (*p == '\\') {
			memcpy(piece, "\\\\", 2);
			plen = 2;
		} else if (n) {
			memcpy(piece, p, n);
			plen = n;
		} else {
			plen = (size_t)snprintf(piece, sizeof(piece), "\\x%02x", *p);
			n = 1;
		}
		if (len + plen > ESCAPE_TEXT_MAX - 3) {
			memcpy(buf + len, "...", 3);
			len += 3;
			break;
		}
		memcpy(buf + len, piece, plen);
		len += plen;
		p += n;
	}
	buf[len] = '\0';
	return buf;
}

void escape_json(FILE *out, const char *s)
{
	const unsigned char *p = (const unsigned char *)(s ? s : "");
	fputc('"', out);
	while (*p) {
		size_t n = safe_len(p);
		if (n == 1 && (*p == '"' || *p == '\\')) {
			fprintf(out, "\\%c", *p);
		} else if (n) {
			fwrite(p, 1, n, out);
		} else if (*p < 0x20 || *p == 0x7f) {
			fprintf(out, "\\u%04x", *p);
			n = 1;
		} else if (*p == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f) {
			fprintf(out, "\\u%04x", p[1]); /* a C1 control, well formed */
			n = 2;
		} else {
			fputs("\\ufffd", out);
			n = 1;
		}
		p += n;
	}
	fputc('"', out);
}
