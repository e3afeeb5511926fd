# spillway.ko with network faults on one server's link, in one boot: server
# 0 on loopback, server 1 in its own network namespace behind a veth pair,
# two copies of every page, io_timeout=3. A workload rewrites its pages in
# random order, one pass per fault, every page checked:
#  b1. 20 ms delay each way on server 1's link (netem on both veth ends);
#  b2. 5% loss each way: TCP retransmits, pages still verify;
#  b3. a silent partition (every packet dropped, no RST) longer than
#      io_timeout: server 1's connections time out, writes go on to server
#      0, reads fail over; healed, spillctl reconnects and the next pass
#      verifies;
#  no hung task (hung_task_timeout_secs 20) and no kernel warning throughout;
#  then detach and rmmod leave nothing behind.
# Needs: spillway.ko spillwayd spillctl spill-workload libspill-mlockall.so
# swap_lib.sh (--include), modules libcrc32c crc32c_generic (veth, sch_netem
# and netem_lib.sh come with every guest).
set -eu
. /opt/spill/swap_lib.sh
. /opt/spill/netem_lib.sh

echo 20 >/proc/sys/kernel/hung_task_timeout_secs
timed_out_more() {
	[ "$(dmesg | grep -cE 'spillway[0-9]+: server 1 connection [0-9]+ closed: (request|send) timed out')" -gt "$1" ]
}
# both ENDS FN ARGS...: a netem function on both ends of server 1's link.
both() {
	_fn=$1
	shift
	"$_fn" kv0 "$@" && "$_fn" -n kns1 kv1 "$@"
}

say "server 1 in a network namespace behind a veth pair"
modprobe veth
ip netns add kns1
ip link add kv0 type veth peer name kv1
ip link set kv1 netns kns1
ip addr add 10.78.0.1/24 dev kv0
ip link set kv0 up
ip -n kns1 addr add 10.78.0.2/24 dev kv1
ip -n kns1 link set kv1 up
ip -n kns1 link set lo up

load_module io_timeout=3
start_server s0 200M
start_server_ns s1 200M kns1 10.78.0.2
attach --server "$s0_url" --server "$s1_url" --replicas 2 --size 128M --name kscen-net
mkswap "$dev" >/dev/null
swapon -d "$dev"
make_cgroup w 32M

say "b1. 20 ms delay on server 1's link"
both netem_delay 20
in_cgroup w spill-workload --size 64M --passes 4 --random --rewrite --mark /tmp/n. --wait /tmp/gn. &
wl=$!
retry 2400 test -e /tmp/n.0 || fail "fill did not finish"
touch /tmp/gn.1
retry 4800 test -e /tmp/n.1 || fail "pass 1 did not finish"
[ "$(server_field 1 extents)" -gt 0 ] || fail "server 1 holds nothing"
both netem_heal

say "b2. 5% loss on server 1's link"
both netem_loss 5
touch /tmp/gn.2
retry 4800 test -e /tmp/n.2 || fail "pass 2 did not finish"
echo "netem dropped $(netem_dropped kv0) packets to server 1, $(netem_dropped -n kns1 kv1) from it"
[ "$(netem_dropped kv0)" -gt 0 ] || fail "netem dropped nothing"
both netem_heal

say "b3. silent partition of server 1 past io_timeout, then healed"
closed0=$(dmesg | grep -cE 'spillway[0-9]+: server 1 connection [0-9]+ closed: (request|send) timed out' || true)
deg0=$(counter degraded_writes)
both netem_partition
touch /tmp/gn.3
retry 1200 timed_out_more "$closed0" || fail "no connection to server 1 timed out"
retry 4800 test -e /tmp/n.3 || fail "pass 3 did not finish"
counter_above degraded_writes "$deg0" || fail "no write went on without server 1"
both netem_heal
retry 1200 server_conns_is 1 2 || fail "spillctl did not reconnect to server 1"
touch /tmp/gn.4
wait "$wl" || fail "workload found bad pages"
[ "$(counter read_errors)" = 0 ] || fail "read errors"
spillctl swap status "$dev"

say "detach and rmmod"
detach_all
check_dmesg
echo "swap_netem: ok"
