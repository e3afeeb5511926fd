/* SPDX-License-Identifier: MIT */
/*
 * Fault-injection proxy for tests: a loopback TCP listener that, for each
 * client it accepts, opens one connection to the real server and forwards
 * bytes both ways on a thread of its own, following the Spillway frame
 * stream (SPILL_WIRE_HDR_SIZE-byte header, payload_len bytes) in each direction so that faults
 * land at frame boundaries or at a chosen byte of a chosen frame.
 *
 * Connections are numbered from 0 in accept order. Every command takes a
 * connection number or FAULT_ALL: every connection open now and every one
 * accepted later. A command applies to every byte that reaches the proxy
 * after it returns; a frame fault (cut, corrupt, forge, delay) to every frame whose
 * header arrives after it.
 *
 * Frame faults fire at the nth frame of an op in one direction, counted per
 * connection from its first frame, dropped ones included (FAULT_ANY_OP
 * counts every frame). A stream that stops looking like frames (bad magic, a
 * payload_len beyond SPILL_MAX_PAYLOAD) is forwarded from there on as plain
 * bytes, where only stall and partition still apply.
 *
 * The test never sleeps: it waits for events (fault_wait) and frame counts
 * (fault_wait_frames), each wait bounded by a timeout that only exists to
 * fail instead of hanging. Every function is safe to call from any thread.
 */
#ifndef SPILLWAY_FAULT_PROXY_H
#define SPILLWAY_FAULT_PROXY_H

#include <stddef.h>
#include <stdint.h>

#define FAULT_ALL (-1)     /* every connection, now and accepted later */
#define FAULT_ANY_OP 0     /* any op; ops are matched without the REPLY bit */

enum fault_dir {
	FAULT_C2S = 1,     /* client to server: requests */
	FAULT_S2C = 2,     /* server to client: replies, server messages */
	FAULT_BOTH = 3,
};

/* How a cut closes the two sockets. */
enum fault_close {
	FAULT_FIN,         /* orderly: FIN to both sides */
	FAULT_RST,         /* abortive: RST to both sides (SO_LINGER 0) */
};

/* What a partitioned connection does when healed. */
enum fault_heal {
	FAULT_HEAL_RESUME, /* forward again, from the next frame boundary */
	FAULT_HEAL_DEAD,   /* keep dropping: its bytes are gone for good */
};

enum fault_event {
	FAULT_EV_ACCEPT,   /* a client connection accepted (and upstream open) */
	FAULT_EV_EOF,      /* one side closed or failed (seen even when partitioned) */
	FAULT_EV_CLOSED,   /* the proxy closed both sockets of the connection */
	FAULT_EV_CUT,      /* a cut fired */
	FAULT_EV_CORRUPT,  /* a byte was flipped */
	FAULT_EV_DROP,     /* a frame (or its rest) was dropped by a partition */
	FAULT_EV_FORGE,    /* a reply's status was rewritten (fault_forge) */
	FAULT_EV_COUNT,
};

/* fault_cut's keep: the header and half the payload of the frame it hits;
 * the whole frame (any keep beyond the frame's length does the same). */
#define FAULT_KEEP_HALF ((size_t)-1)
#define FAULT_KEEP_ALL ((size_t)-2)

struct fault_proxy;

/* Listen on 127.0.0.1 (a free port) and forward to 127.0.0.1:upstream_port.
 * 0 or -errno. */
int fault_proxy_start(struct fault_proxy **out, int upstream_port);
/* Close every connection, join every thread, free. */
void fault_proxy_stop(struct fault_proxy *p);
int fault_proxy_port(const struct fault_proxy *p);
/* "tcp://127.0.0.1:PORT": what a client connects to. */
const char *fault_proxy_url(const struct fault_proxy *p);

/*
 * At the nth (1-based) frame of op going in dir (one direction), forward its
 * first keep bytes (0: none of it, FAULT_KEEP_HALF, FAULT_KEEP_ALL),
 * then close both sockets as how says. Fires once per connection.
 */
int fault_cut(struct fault_proxy *p, int conn, enum fault_dir dir, uint16_t op,
	      unsigned nth, size_t keep, enum fault_close how);
/* Flip (xor 0xff) the byte at offset (below SPILL_WIRE_HDR_SIZE: header, then payload) of the
 * nth frame of op in dir; nth 0: of every such frame. An offset beyond the
 * frame does nothing. */
int fault_corrupt(struct fault_proxy *p, int conn, enum fault_dir dir, uint16_t op,
		  unsigned nth, size_t offset);
/*
 * A server that lies in a well-formed way: rewrite the status of a reply
 * (server to client) of op to status, with a checksum that matches, so the
 * client acts on the status instead of rejecting the frame. keep_payload 0:
 * the reply loses its payload (and flags), as an error reply has none;
 * 1: the payload is kept as it came (e.g. ABSENT on a READ that carries
 * pages and no presence map). nth as for fault_cut, counted per
 * connection; nth 0: the next such reply on any connection conn covers,
 * once.
 */
int fault_forge(struct fault_proxy *p, int conn, uint16_t op, unsigned nth, uint16_t status,
		int keep_payload);
/*
 * The state faults below take a connection already accepted (else -ENOENT)
 * or FAULT_ALL, which also sets them for connections accepted later.
 *
 * Stop forwarding in dir (bytes are held: not read from the sender, not
 * written to the receiver) until fault_resume.
 */
int fault_stall(struct fault_proxy *p, int conn, enum fault_dir dir);
int fault_resume(struct fault_proxy *p, int conn, enum fault_dir dir);
/* Read and drop everything both ways, send nothing: no byte, no FIN, no RST,
 * even if a side closes. A frame partly forwarded when it starts stays cut
 * short on the receiving side. */
int fault_partition(struct fault_proxy *p, int conn);
/* FAULT_HEAL_RESUME: forward again from each direction's next frame boundary
 * (the rest of a frame partly dropped is dropped too). FAULT_HEAL_DEAD: the
 * connection keeps dropping for good; only connections accepted later are
 * spared. */
int fault_heal(struct fault_proxy *p, int conn, enum fault_heal how);
/* Hold each frame in dir for usec after its header arrived (0: no delay). */
int fault_delay(struct fault_proxy *p, int conn, enum fault_dir dir, unsigned usec);
/* Remove every fault: resume, heal(RESUME), delay 0, and the cut and corrupt
 * rules given for conn (FAULT_ALL: every rule). */
int fault_clear(struct fault_proxy *p, int conn);

/* Events so far on conn (FAULT_ALL: on all of them). */
long fault_count(struct fault_proxy *p, enum fault_event ev, int conn);
/* Wait until fault_count(ev, conn) >= min. 0, or -ETIMEDOUT. */
int fault_wait_count(struct fault_proxy *p, enum fault_event ev, int conn, long min,
		     int timeout_ms);
/* The same with min 1: "it happened". */
int fault_wait(struct fault_proxy *p, enum fault_event ev, int conn, int timeout_ms);
/* Frames whose header the proxy has seen (forwarded or not yet, or dropped),
 * in dir (FAULT_BOTH: the sum), of op (FAULT_ANY_OP: all), on conn
 * (FAULT_ALL: all). */
long fault_frames(struct fault_proxy *p, int conn, enum fault_dir dir, uint16_t op);
int fault_wait_frames(struct fault_proxy *p, int conn, enum fault_dir dir, uint16_t op,
		      long min, int timeout_ms);
/* Connections accepted so far. */
int fault_conns(struct fault_proxy *p);

#endif
