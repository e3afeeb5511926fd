# spillway.ko: a hung server stalls only the requests sent to it, never a
# writer of another copy (no sleeping lock across a network round trip on
# the swap-out path). Two spillwayd, two copies, io_timeout=600 so that no
# request times out here: only the map's locking can explain progress.
#  1. fill a workload's pages into swap (both copies);
#  2. server 1 restarts empty: spillctl reconnects with a reset, so every
#     chunk needs a new extent there (ALLOC) on its next write;
#  3. server 1 is SIGSTOPped (its connections stay up, its requests go
#     unanswered) and the workload runs a random pass with rewrite: it must
#     finish while server 1 is still stopped (each writer waits a second at
#     most for an extent of server 1, then writes the copy on server 0;
#     with the chunk mutex held across the ALLOC, every writer of the chunk
#     waited for io_timeout);
#  4. SIGCONT: the late ALLOC replies are taken, and every page verifies.
# Needs: spillway.ko spillwayd spillctl spill-workload libspill-mlockall.so
# swap_lib.sh (--include), modules libcrc32c crc32c_generic.
set -eu
. /opt/spill/swap_lib.sh

srv_has_extents() { [ "$(srv_field "$1" extents)" -gt 0 ]; }

say "1. module (io_timeout=600), two servers, two copies, a workload fills"
# repair=0: between server 1's restart and its stop, repair would copy some
# pages there, and a read of one of them sent to the stopped server waits
# io_timeout (600 s) like any request to it. This case is about writers.
load_module io_timeout=600 repair=0
start_server s0 256M
start_server s1 256M
attach --server "$s0_url" --server "$s1_url" --replicas 2 --size 128M --name vm-stall
mkswap "$dev" >/dev/null
swapon -d "$dev"
make_cgroup w 48M
in_cgroup w spill-workload --size 96M --passes 2 --random --rewrite \
	--mark /tmp/a. --wait /tmp/ga. --wait-ms 900000 &
wl=$!
retry 2400 test -e /tmp/a.0 || fail "fill did not finish"
[ "$(status_field degraded_writes)" = 0 ] || fail "writes missed a copy before any failure"

say "2. server 1 restarts empty: its copies are gone, every chunk needs an extent there"
kill -9 "$s1_pid"
retry 200 srv_conns_is 1 0 || fail "server 1 still looks connected"
start_server s1 256M "${s1_url##*:}"
retry 400 srv_conns_is 1 2 || fail "spillctl did not reconnect to server 1"
[ "$(srv_field 1 resets)" = 1 ] || fail "no reset after server 1 lost our pages"

say "3. server 1 stopped (requests hang, connections stay): the workload goes on"
kill -STOP "$s1_pid"
touch /tmp/ga.1
retry 7200 test -e /tmp/a.1 || fail "no pass finished while server 1 was stopped"
grep -q '^State:.*stopped' "/proc/$s1_pid/status" || fail "server 1 is not stopped"
srv_conns_is 1 2 || fail "server 1's connections went: the test proves nothing"
[ "$(srv_field 1 extents)" = 0 ] || fail "server 1 answered an ALLOC while stopped"
[ "$(status_field degraded_writes)" -gt 0 ] || fail "no write left server 1's copy out"
spillctl swap status "$dev"
check_dmesg

say "4. SIGCONT: late replies are taken, every page verifies"
kill -CONT "$s1_pid"
retry 400 srv_has_extents 1 || fail "no late ALLOC reply was taken"
touch /tmp/ga.2
wait $wl || fail "workload found bad pages"
[ "$(status_field read_errors)" = 0 ] || fail "read errors"
detach_all
check_dmesg
echo "swap_stall: ok"
