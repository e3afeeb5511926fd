# spillway.ko with network faults on one server's link, in one boot: server
# 0 on loopback, server 1 in its own network namespace behind a veth pair,
# two copies of every page, io_timeout=3. A workload rewrites its pages in
# random order, one pass per fault, every page checked on every pass:
#  b1. 20 ms delay each way on server 1's link (netem on both veth ends),
#      against well under a millisecond on loopback: writes still reach
#      both copies (no degraded write); reads prefer server 0: server 1
#      sends less than an eighth of the bytes the pass read (about half
#      while reads went to either copy, and the pass then overran its
#      bound);
#  b2. 5% loss each way: netem drops packets, TCP retransmits, pages
#      verify;
#  b3. a silent partition (every packet dropped, no RST) longer than
#      io_timeout: server 1's connections time out (the timeouts counter),
#      writes go on to server 0 alone (degraded writes);
#  b4. healed: spillctl reconnects, repair copies every page back to server
#      1 (degraded_pages returns to 0, server 1 holds pages again);
#  b5. kill -9 server 0: a last pass reads every page from server 1 alone,
#      so a copy that repair or a late write left stale would show;
#  no connection closed for a bad checksum, no read error, no hung task
#  (hung_task_timeout_secs 20), no kernel warning; detach and rmmod leave
#  nothing behind.
# Needs: spillway.ko spillwayd spillctl spill-workload libspill-mlockall.so
# swap_lib.sh (--include), modules libcrc32c crc32c_generic (veth, sch_netem
# and netem_lib.sh come with every guest).
set -eu
. /opt/spill/swap_lib.sh
. /opt/spill/netem_lib.sh

echo 20 >/proc/sys/kernel/hung_task_timeout_secs
# both FN ARGS...: a netem function on both ends of server 1's link.
both() {
	_fn=$1
	shift
	"$_fn" kv0 "$@" && "$_fn" -n kns1 kv1 "$@"
}
# netem_sent [-n NS] DEV bytes|pkt: what the netem qdisc on DEV passed on.
netem_sent() {
	_netem_ns=""; [ "$1" != -n ] || { _netem_ns=$2; shift 2; }
	_netem_tc -s qdisc show dev "$1" |
		awk -v u="$2" '$1 == "Sent" { print (u == "bytes" ? $2 : $4); exit }'
}
retrans() { awk '$1 == "Tcp:" && n++ { print $13 }' /proc/net/snmp; }
server_pages() { awk -v s="$1" '$1 == s { print $7 }' "/sys/block/${dev#/dev/}/spillway/servers"; }
no_degraded() { [ "$(counter degraded_pages)" = 0 ]; }

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
make_cgroup w 16M
in_cgroup w spill-workload --size 32M --passes 4 --random --rewrite --mark /tmp/n. --wait /tmp/gn. &
wl=$!
retry 2400 test -e /tmp/n.0 || fail "fill did not finish"

say "b1. 20 ms delay on server 1's link"
rd0=$(counter reads)
both netem_delay 20
touch /tmp/gn.1
retry 4800 test -e /tmp/n.1 || fail "pass 1 did not finish"
# Pages read in the pass, and what server 1 sent meanwhile (its qdisc is
# new): write replies and ACKs, plus whatever pages were read from it. Were
# reads blind to the delay, about half the pages would come from it.
rd_bytes=$((($(counter reads) - rd0) * 4096))
from1=$(netem_sent -n kns1 kv1 bytes)
echo "netem passed $(netem_sent kv0 pkt) packets to server 1; pass read $rd_bytes bytes," \
	"server 1 sent $from1"
[ "$(netem_sent kv0 pkt)" -gt 0 ] || fail "nothing went through the delay"
[ $((from1 * 8)) -lt "$rd_bytes" ] || fail "reads went to the slow copy"
[ "$(counter degraded_writes)" = 0 ] || fail "a write left out the slow copy"
[ "$(server_pages 1)" -gt 0 ] || fail "server 1 holds nothing"
both netem_heal

say "b2. 5% loss on server 1's link"
rt0=$(retrans)
both netem_loss 5
touch /tmp/gn.2
retry 4800 test -e /tmp/n.2 || fail "pass 2 did not finish"
echo "netem dropped $(netem_dropped kv0) packets to server 1, $(netem_dropped -n kns1 kv1) from it;" \
	"$(($(retrans) - rt0)) TCP segments retransmitted"
[ "$(netem_dropped kv0)" -gt 0 ] || fail "netem dropped nothing"
[ "$(retrans)" -gt "$rt0" ] || fail "TCP retransmitted nothing"
both netem_heal

say "b3. silent partition of server 1 past io_timeout"
to0=$(counter timeouts)
deg0=$(counter degraded_writes)
both netem_partition
touch /tmp/gn.3
retry 1200 counter_above timeouts "$to0" || fail "no connection to server 1 timed out"
retry 4800 test -e /tmp/n.3 || fail "pass 3 did not finish"
counter_above degraded_writes "$deg0" || fail "no write went on without server 1"
echo "timeouts $(counter timeouts), degraded writes $(counter degraded_writes)," \
	"failovers $(counter failovers), degraded pages $(counter degraded_pages)"

say "b4. healed: reconnect, repair brings server 1's copy back"
both netem_heal
retry 1200 server_conns_is 1 2 || fail "spillctl did not reconnect to server 1"
retry 2400 no_degraded || fail "$(counter degraded_pages) pages still lack a copy"
[ "$(server_pages 1)" -gt 0 ] || fail "server 1 holds no page after repair"
echo "repairs $(counter repairs); server 1 holds $(server_pages 1) pages"
cat "/sys/block/${dev#/dev/}/spillway/servers"

say "b5. kill -9 server 0: every page reads from server 1 alone"
kill_server 0 "$s0_pid"
touch /tmp/gn.4
retry 4800 test -e /tmp/n.4 || fail "pass 4 did not finish"
wait "$wl" || fail "workload found bad pages"
[ "$(counter read_errors)" = 0 ] || fail "read errors"
! dmesg | grep -E 'spillway[0-9]+: .*closed: bad checksum' || fail "a connection closed for a bad checksum"
spillctl swap status "$dev"

say "detach and rmmod"
detach_all
check_dmesg
echo "swap_netem: ok"
