# spillway.ko with two spillwayd and two copies of every page, in one boot:
#  -  server 0 is reached through spill-mangle, which corrupts replies on
#     demand: each bad frame closes one connection (checked, logged), the
#     resident spillctl replaces it, reads fail over or retry, and every
#     page still verifies;
#  3. kill -9 one server while a workload swaps: every page still verifies
#     (reads fail over, writes go on to the survivor), and
#     `spillctl swap status` shows the server down and the failovers;
#     the server comes back empty: spillctl registers afresh, the module
#     drops the lost copies (reset) and new writes go to both again, so
#     the other server can die next without losing a page;
#  3c. with every server down a read of a remote page fails at once: the
#     process gets SIGBUS, the guest goes on, fast_fails counts it;
#  3d. a server comes back and a fresh workload swaps without an error;
#  5. detach and rmmod leave nothing behind.
# Needs: spillway.ko spillwayd spillctl spill-workload spill-mangle
# libspill-mlockall.so swap_lib.sh (--include), modules libcrc32c crc32c_generic.
set -eu
. /opt/spill/swap_lib.sh

srv_failures_at_least() { [ "$(srv_field "$1" connection_failures)" -ge "$2" ]; }

say "module, two servers (server 0 behind spill-mangle), attach with 2 copies"
load_module
start_server s0 256M
start_server s1 256M
mport=17077
spill-mangle --listen $mport --upstream "${s0_url##*:}" --trigger /tmp/mangle. >/tmp/mangle.out &
retry 200 grep -qs listening /tmp/mangle.out || fail "spill-mangle did not start"
attach --server "tcp://127.0.0.1:$mport" --server "$s1_url" --replicas 2 --size 192M \
	--name vm-replicas
mkswap "$dev" >/dev/null
swapon -d "$dev"
make_cgroup w 48M
in_cgroup w spill-workload --size 96M --passes 2 --random --rewrite \
	--mark /tmp/a. --wait /tmp/ga. &
wl=$!
retry 2400 test -e /tmp/a.0 || fail "fill did not finish"
[ "$(status_field degraded_writes)" = 0 ] || fail "writes missed a copy before any failure"
u0=$(server_used "$s0_url")
u1=$(server_used "$s1_url")
echo "after the fill: $(status_field pages_remote) pages remote; servers lend $u0 and $u1 bytes"
[ "$u0" -gt 0 ] && [ "$u1" -gt 0 ] || fail "a server holds nothing"

say "bad replies from server 0 while the workload swaps"
touch /tmp/ga.1
for n in 1 2 3 4 5 6 7 8; do
	touch /tmp/mangle.$n
	retry 1200 test -e /tmp/mangle.$n.done || fail "no reply to corrupt"
	retry 400 srv_failures_at_least 0 "$n" || fail "bad reply $n did not close its connection"
	retry 400 srv_conns_is 0 2 || fail "spillctl did not replace the connection"
done
retry 4800 test -e /tmp/a.1 || fail "pass 1 did not finish"
dmesg | grep -E 'spillway0: server 0 connection [0-9]+ closed' | sed 's/^\[[ 0-9.]*\] //' | sort | uniq -c
[ "$(status_field read_errors)" = 0 ] || fail "read errors"

say "3. kill -9 server 1 between two checks"
kill -9 "$s1_pid"
retry 200 srv_conns_is 1 0 || fail "server 1 still looks connected"
touch /tmp/ga.2
wait $wl || fail "workload found bad pages after the failures"
spillctl swap status "$dev"
[ "$(status_field failovers)" -gt 0 ] || fail "no read failed over"
[ "$(status_field degraded_writes)" -gt 0 ] || fail "no write missed the dead server"
[ "$(status_field read_errors)" = 0 ] || fail "read errors"
spillctl swap status --json "$dev" | grep -q '"index":1,"url":"[^"]*","state":"down"' ||
	fail "status does not show server 1 down"

say "server 1 restarts empty: reset, then both copies again"
start_server s1 256M "${s1_url##*:}"
retry 400 srv_conns_is 1 2 || fail "spillctl did not reconnect to server 1"
[ "$(srv_field 1 resets)" = 1 ] || fail "no reset after server 1 lost our pages"
deg=$(status_field degraded_writes)
cgroup_limit w 24M
in_cgroup w spill-workload --size 48M --passes 1 --random --rewrite --seed 7 \
	--mark /tmp/b. --wait /tmp/gb. &
wl=$!
retry 2400 test -e /tmp/b.0 || fail "fill did not finish"
[ "$(status_field degraded_writes)" = "$deg" ] || fail "writes still miss server 1"

say "3b. kill -9 server 0: the copies on server 1 carry on"
kill -9 "$s0_pid"
retry 200 srv_conns_is 0 0 || fail "server 0 still looks connected"
touch /tmp/gb.1
wait $wl || fail "workload found bad pages after the second failure"
[ "$(status_field read_errors)" = 0 ] || fail "read errors"
spillctl swap status "$dev"

say "3c. every server down: a read of a remote page fails at once (SIGBUS)"
# The workload's pages go remote in its 24 MiB cgroup; the limit is then
# lifted so that its swap-ins need no swap-out (which would fail too and
# end in the cgroup's OOM killer instead of the SIGBUS this is about).
in_cgroup w spill-workload --size 48M --passes 1 --seed 11 --mark /tmp/c. --wait /tmp/gc. \
	--wait-ms 600000 &
wl=$!
retry 2400 test -e /tmp/c.0 || fail "fill did not finish"
[ "$(status_field pages_remote)" -gt 0 ] || fail "nothing went to swap"
cgroup_limit w 512M
echo 2 >/sys/module/spillway/parameters/reconnect_wait
kill -9 "$s1_pid"
retry 200 srv_conns_is 1 0 || fail "server 1 still looks connected"
touch /tmp/gc.1
rc=0
wait $wl || rc=$?
[ "$rc" = 135 ] || fail "the workload ended with $rc, not by SIGBUS (135)"
fast_fails() { # from sysfs when it is there, else from the module's message
	_f=/sys/block/${dev#/dev/}/spillway/fast_fails
	if [ -r "$_f" ]; then
		cat "$_f"
	else
		dmesg | sed -n "s/.*${dev#/dev/}: no server reachable for [0-9]* s: failing I\/O at once (\([0-9]*\) fast failures).*/\1/p" | tail -1
	fi
}
ff=$(fast_fails)
echo "fast failures: ${ff:-none}"
[ "${ff:-0}" -gt 0 ] || fail "no I/O failed fast"
check_dmesg

say "3d. a server returns: swap works again"
echo 30 >/sys/module/spillway/parameters/reconnect_wait
cgroup_limit w 24M
start_server s1 256M "${s1_url##*:}"
retry 400 srv_conns_is 1 2 || fail "spillctl did not reconnect to server 1"
werr=$(status_field write_errors)
in_cgroup w spill-workload --size 48M --passes 1 --random --rewrite --seed 13 ||
	fail "workload found bad pages after the servers came back"
[ "$(status_field write_errors)" = "$werr" ] || fail "writes failed after server 1 came back"
dmesg | grep -q "${dev#/dev/}: server 1 back" || fail "no 'server 1 back' message"

say "5. detach and rmmod"
swapoff "$dev"
u1=$(server_used "$s1_url")
detach_all
retry 100 used_at_most "$s1_url" 0 || fail "server 1 still lends $(server_used "$s1_url") bytes"
echo "server 1 lent $u1 bytes before the detach, 0 after"
check_dmesg
echo "swap_replicas: ok"
