# spillway.ko with two copies whose current pages diverge, read in one
# request (issue 14: per-page fall-back of multi-page reads):
#  1. pages 0-7 written to both copies; server 0 stopped while pages 4-7
#     are rewritten (they are current on copy 1 only), resumed; server 1
#     stopped while pages 0-3 are rewritten (current on copy 0 only),
#     resumed. No copy holds all eight pages' current data;
#  2. one 8-page read (and a 16-page read that also spans unwritten
#     pages) returns the newest bytes of every page, with no read error:
#     before the fall-back, the empty intersection of the copies failed the
#     whole read with EIO; reads of one copy's run, and of never-written
#     pages, return their bytes too;
#  3. detach and rmmod leave nothing behind.
# The device is used as a raw block device (O_DIRECT reads and writes of
# several pages are single bios), not as swap.
# Needs: spillway.ko spillwayd spillctl libspill-mlockall.so swap_lib.sh
# (--include), modules libcrc32c crc32c_generic.
set -eu
. /opt/spill/swap_lib.sh


say "module, two servers, attach with 2 copies"
# repair=0: the copies must stay diverged until the reads below.
load_module repair=0
# A stopped server's requests time out in seconds, not the default 30.
echo 2 >/sys/module/spillway/parameters/io_timeout
start_server s0 64M
start_server s1 64M
attach --server "$s0_url" --server "$s1_url" --replicas 2 --size 16M --name vm-diverge
conns=$(srv_field 0 connections)
[ "$conns" -gt 0 ] || fail "no connection to server 0"

head -c 32768 /dev/urandom >/tmp/v1
head -c 16384 /dev/urandom >/tmp/lo
head -c 16384 /dev/urandom >/tmp/hi
dd if=/tmp/v1 of="$dev" bs=32k count=1 oflag=direct 2>/dev/null || fail "first write"
[ "$(status_field degraded_writes)" = 0 ] || fail "a copy missed the first write"

say "1. pages 4-7 rewritten while server 0 is stopped, pages 0-3 while server 1 is"
kill -STOP "$s0_pid"
dd if=/tmp/hi of="$dev" bs=16k seek=1 count=1 oflag=direct 2>/dev/null ||
	fail "write of pages 4-7 with server 0 stopped"
kill -CONT "$s0_pid"
retry 600 srv_conns_is 0 "$conns" || fail "spillctl did not reconnect to server 0"
kill -STOP "$s1_pid"
dd if=/tmp/lo of="$dev" bs=16k count=1 oflag=direct 2>/dev/null ||
	fail "write of pages 0-3 with server 1 stopped"
kill -CONT "$s1_pid"
retry 600 srv_conns_is 1 "$conns" || fail "spillctl did not reconnect to server 1"
spillctl swap status "$dev"
# Both copies kept their session: each still holds the pages it had.
[ "$(srv_field 0 resets)" = 0 ] && [ "$(srv_field 1 resets)" = 0 ] ||
	fail "a server forgot the device: copies did not diverge, only one is left"
[ "$(status_field degraded_writes)" -ge 8 ] || fail "the rewrites reached both copies"

say "2. one read across pages current on different copies"
cat /tmp/lo /tmp/hi >/tmp/want
dd if="$dev" of=/tmp/got bs=32k count=1 iflag=direct 2>/tmp/dd.err ||
	{ cat /tmp/dd.err; fail "8-page read failed"; }
cmp /tmp/want /tmp/got || fail "8-page read returned wrong bytes"
# Pages 8-15 were never written: zeros.
head -c 32768 /dev/zero >>/tmp/want
dd if="$dev" of=/tmp/got bs=64k count=1 iflag=direct 2>/tmp/dd.err ||
	{ cat /tmp/dd.err; fail "16-page read failed"; }
cmp /tmp/want /tmp/got || fail "16-page read returned wrong bytes"
# Runs that one copy holds, and never-written pages, in one request each.
dd if="$dev" of=/tmp/got bs=16k count=1 iflag=direct 2>/dev/null || fail "read of pages 0-3"
cmp /tmp/lo /tmp/got || fail "read of pages 0-3 returned wrong bytes"
dd if="$dev" of=/tmp/got bs=16k skip=1 count=1 iflag=direct 2>/dev/null || fail "read of pages 4-7"
cmp /tmp/hi /tmp/got || fail "read of pages 4-7 returned wrong bytes"
dd if="$dev" of=/tmp/got bs=32k skip=1 count=1 iflag=direct 2>/dev/null || fail "read of pages 8-15"
head -c 32768 /dev/zero | cmp - /tmp/got || fail "never-written pages are not zeros"
[ "$(status_field read_errors)" = 0 ] || fail "read errors"
fb=/sys/block/${dev#/dev/}/spillway/read_fallbacks
if [ -e "$fb" ]; then
	[ "$(cat "$fb")" -gt 0 ] || fail "read_fallbacks is $(cat "$fb")"
	echo "read_fallbacks: $(cat "$fb")"
else
	echo "($fb not there: the fall-back counter is not checked)"
fi

say "3. detach and rmmod"
detach_all
check_dmesg
echo "swap_diverge: ok"
