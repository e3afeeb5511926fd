# spillway.ko against a server that lies in well-formed frames (issue 14's
# hostile review): server 0 is reached through spill-fault, which rewrites
# the status of one reply with a checksum that matches, so the module acts
# on the status instead of refusing the frame. Two copies, repair=0 (so a
# copy the module drops stays dropped and shows in degraded_pages), a raw
# block device read and written with O_DIRECT. Each read starts on copy 0,
# which lives on server 0 for the first chunk (server 1, behind a second
# spill-fault, answers 20 ms late, so the module's preference for a faster
# copy keeps it so). A read bio first goes out as
# one request; when that fails, the whole bio is read again by the rules
# under test (copy 0 first, then copy 1, then page by page): so a case
# forges as many replies in a row as it needs to reach the rule.
#  a. EINTERNAL on a READ, twice (an error that says nothing of the data):
#     the read is served by copy 1 (a failover), and copy 0 keeps every
#     page (degraded_pages 0);
#  b. ENOREG (the server forgot our identity): that connection is closed
#     with its message, spillctl replaces it, the read is served, no page
#     dropped;
#  c. ABSENT on a READ that carries pages but no presence map: the
#     connection is closed, those bytes are never taken for data, the read
#     returns the written bytes;
#  d. ABSENT without payload three times (the server says it lacks the
#     pages): the 8-page run is read page by page, and copy 0 loses the one
#     page it was said to lack, no other; the read is right;
#  e. every reply from server 0 held while pages are freed (FREE in flight)
#     and a new chunk is written (ALLOC in flight): detach and rmmod finish
#     once io_timeout closes those connections, with no kernel warning.
# Needs: spillway.ko spillwayd spillctl spill-fault libspill-mlockall.so
# swap_lib.sh (--include), modules libcrc32c crc32c_generic.
set -eu
. /opt/spill/swap_lib.sh

# fault CMD...: one command to the proxy; fails unless it answers "ok".
fault() {
	echo "$*" >&4
	read -r _fa <&5 || fail "spill-fault is gone"
	[ "$_fa" = ok ] || fail "spill-fault '$*': $_fa"
}
degraded() { counter degraded_pages; }
# forge N STATUS keep|drop: the next N READ replies from server 0.
forge() {
	_fn=$1
	shift
	while [ "$_fn" -gt 0 ]; do
		fault forge all read 0 "$@"
		_fn=$((_fn - 1))
	done
}
closed_for_s0() { dmesg | grep -cE "spillway[0-9]+: server 0 connection [0-9]+ closed: $1" || true; }
# read_check SKIP: pages SKIP*8..SKIP*8+7 read in one request match /tmp/v1's part.
read_check() {
	dd if="$dev" of=/tmp/got bs=32k skip="$1" count=1 iflag=direct 2>/tmp/dd.err ||
		{ cat /tmp/dd.err; fail "read of block $1 failed"; }
	dd if=/tmp/v1 of=/tmp/want bs=32k skip="$1" count=1 2>/dev/null
	cmp /tmp/want /tmp/got || fail "read of block $1 returned wrong bytes"
}

say "module, server 0 behind spill-fault, two copies"
load_module repair=0
echo 2 >/sys/module/spillway/parameters/io_timeout
start_server s0 64M
start_server s1 64M
mkfifo /tmp/fault.in /tmp/fault.out /tmp/slow.in /tmp/slow.out
spill-fault --upstream "${s0_url##*:}" </tmp/fault.in >/tmp/fault.out 2>/tmp/fault.err &
fault_pid=$!
exec 4>/tmp/fault.in 5</tmp/fault.out
read -r fport <&5 || { cat /tmp/fault.err; fail "spill-fault did not start"; }
# Server 1 answers 20 ms late, so that reads always try copy 0 first (the
# module prefers a clearly faster copy: the proxy's own hop must never make
# server 0 look like the slow one).
spill-fault --upstream "${s1_url##*:}" </tmp/slow.in >/tmp/slow.out 2>/tmp/slow.err &
slow_pid=$!
exec 6>/tmp/slow.in 7</tmp/slow.out
read -r sport <&7 || { cat /tmp/slow.err; fail "the second spill-fault did not start"; }
echo "delay all s2c 20000" >&6
read -r _sa <&7
[ "$_sa" = ok ] || fail "delay on server 1: $_sa"
attach --server "tcp://127.0.0.1:${fport#port=}" --server "tcp://127.0.0.1:${sport#port=}" \
	--replicas 2 --size 16M --name vm-lies
conns=$(srv_field 0 connections)
[ "$conns" -gt 0 ] || fail "no connection to server 0"
head -c 262144 /dev/urandom >/tmp/v1
dd if=/tmp/v1 of="$dev" bs=256k count=1 oflag=direct 2>/dev/null || fail "first write"
[ "$(status_field degraded_writes)" = 0 ] || fail "a copy missed the first write"
[ "$(degraded)" = 0 ] || fail "degraded pages before any fault"

say "a. EINTERNAL on a READ: the copy is kept"
fo=$(counter failovers)
forge 2 EINTERNAL drop
read_check 0
fault wait forge all 2 20000
counter_above failovers "$fo" || fail "the read did not go on to copy 1"
[ "$(degraded)" = 0 ] || fail "copy 0 dropped $(degraded) pages for an error that is not about them"

# closes_one BLOCK FORGED STATUS keep|drop WHY: one forged reply to the read
# of BLOCK (FORGED replies forged in all by then) closes one connection to
# server 0 for WHY, spillctl replaces it, and no page is dropped.
closes_one() {
	forge 1 "$3" "$4"
	read_check "$1"
	fault wait forge all "$2" 20000
	[ "$(closed_for_s0 "$5")" = 1 ] || fail "no connection closed for $3 ($4)"
	retry 600 srv_conns_is 0 "$conns" || fail "spillctl did not replace the connection"
	[ "$(degraded)" = 0 ] || fail "copy 0 dropped pages for $3 ($4)"
}

say "b. ENOREG: that connection is closed and replaced"
closes_one 1 3 ENOREG drop 'the server no longer knows our identity'

say "c. ABSENT with pages and no presence map: the connection is closed"
closes_one 2 4 ABSENT keep 'ABSENT reply without a presence map'

say "d. ABSENT without payload: copy 0 loses that page only"
d0=$(degraded)
fb0=$(counter read_fallbacks)
forge 3 ABSENT drop
read_check 3
fault wait forge all 7 20000
[ "$(degraded)" = "$((d0 + 1))" ] || fail "degraded_pages is $(degraded), expected $((d0 + 1))"
counter_above read_fallbacks "$fb0" || fail "the run was not read page by page"
# Its pages are current on different copies now: still one right read.
read_check 3
read_check 0
[ "$(status_field read_errors)" = 0 ] || fail "read errors"
check_dmesg

say "e. FREE and ALLOC in flight to a server whose replies are held, then detach"
fault stall all s2c
blkdiscard -o 0 -l 2097152 "$dev" || fail "discard of the first chunk"
# Chunk 2's copy 0 is on server 0: its extent is claimed now, while held.
dd if=/tmp/v1 of="$dev" bs=256k seek=16 count=1 oflag=direct 2>/dev/null ||
	fail "write to a new chunk with server 0 held"
detach_all
fault clear all
check_dmesg
echo quit >&4
echo quit >&6
wait "$fault_pid" "$slow_pid" || true
echo "swap_lies: ok"
