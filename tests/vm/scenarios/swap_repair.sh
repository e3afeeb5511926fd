# spillway.ko brings lost copies back (kmod/repair.c): two spillwayd, two
# copies of every page, in one boot:
#  1. a workload fills its memory, swapped out to both servers;
#  2. kill -9 server 1 during a rewrite pass: the rewrites reach server 0
#     only (degraded writes), every page verifies;
#  3. server 1 restarts empty: spillctl reconnects with a reset, so no copy
#     on server 1 counts any more; while the workload pauses, the module
#     copies every written page from server 0 back to server 1, until
#     none lacks a copy (its kernel log says so);
#  4. kill -9 server 0: every page still verifies, from server 1 alone
#     (without repair the pages live on server 0 only, and this fails);
#  5. detach and rmmod leave nothing behind.
# Needs: spillway.ko spillwayd spillctl spill-workload libspill-mlockall.so
# swap_lib.sh (--include), modules libcrc32c crc32c_generic.
set -eu
. /opt/spill/swap_lib.sh

# The module's line at the end of a repair walk that left every page whole.
repaired_all() { dmesg | grep -qE 'spillway[0-9]+: repaired [0-9]+ pages; 0 written pages lack a copy'; }

say "1. module, two servers, attach with 2 copies, a workload fills"
load_module
start_server s0 256M
start_server s1 256M
attach --server "$s0_url" --server "$s1_url" --replicas 2 --size 192M --name vm-repair
mkswap "$dev" >/dev/null
swapon -d "$dev"
make_cgroup w 48M
in_cgroup w spill-workload --size 96M --passes 2 --random --rewrite \
	--mark /tmp/a. --wait /tmp/ga. &
wl=$!
retry 2400 test -e /tmp/a.0 || fail "fill did not finish"
[ "$(status_field degraded_writes)" = 0 ] || fail "writes missed a copy before any failure"
echo "after the fill: $(status_field pages_remote) pages remote"

say "2. kill -9 server 1 as a rewrite pass begins"
touch /tmp/ga.1
kill_server 1 "$s1_pid"
retry 4800 test -e /tmp/a.1 || fail "pass 1 did not finish"
[ "$(status_field degraded_writes)" -gt 0 ] || fail "no write missed the dead server"
[ "$(status_field read_errors)" = 0 ] || fail "read errors"
! repaired_all || fail "a repair walk claims every page whole while server 1 is down"

say "3. server 1 restarts empty: reset, then every page copied back to it"
start_server s1 256M "${s1_url##*:}"
retry 400 srv_conns_is 1 2 || fail "spillctl did not reconnect to server 1"
[ "$(srv_field 1 resets)" = 1 ] || fail "no reset after server 1 lost our pages"
retry 2400 repaired_all || {
	dmesg | grep -E 'spillway[0-9]+: repaired' | tail -5
	fail "copies were not repaired"
}
dmesg | grep -E 'spillway[0-9]+: repaired' | sed 's/^\[[ 0-9.]*\] //'
# The sysfs counter, where the module has it.
rep=/sys/block/${dev#/dev/}/spillway/repairs
if [ -r "$rep" ]; then
	[ "$(cat "$rep")" -gt 0 ] || fail "repairs is 0 in $rep"
	echo "repairs: $(cat "$rep")"
fi
echo "pages remote: $(status_field pages_remote); server 1 lends $(server_used "$s1_url") bytes"

say "4. kill -9 server 0: every page verifies from server 1 alone"
kill_server 0 "$s0_pid"
touch /tmp/ga.2
wait $wl || fail "workload found bad pages with server 0 gone"
[ "$(status_field read_errors)" = 0 ] || fail "read errors"
spillctl swap status "$dev"

say "5. detach and rmmod"
swapoff "$dev"
detach_all
retry 100 used_at_most "$s1_url" 0 || fail "server 1 still lends $(server_used "$s1_url") bytes"
check_dmesg
echo "swap_repair: ok"
