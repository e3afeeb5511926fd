# Network faults in a tests/vm/run guest with tc netem (sch_netem), for
# scenarios that test what a client or spillway.ko does when the network
# misbehaves. tests/vm/run always puts this file, iproute2's tc and the
# sch_netem module in the guest; scenarios source it:
#     . /opt/spill/netem_lib.sh
#
# netem shapes what leaves an interface (egress). On lo that is all loopback
# traffic, both ways; on one end of a veth pair it is one direction only, so
# a full partition of a veth link needs both ends. Every function takes an
# optional leading "-n NETNS" to act on an interface in that namespace.
#
#   netem_delay [-n NS] DEV MS   every packet leaving DEV waits MS ms
#   netem_partition [-n NS] DEV  every packet leaving DEV is dropped, silently:
#                                no RST, no ICMP, the sender just never hears
#                                back (TCP retransmits into the void)
#   netem_heal [-n NS] DEV       remove the netem qdisc: traffic flows again,
#                                TCP delivers what it retransmits
#   netem_dropped [-n NS] DEV    packets netem dropped on DEV so far
#
# Each returns tc's status; none sleeps. A partition longer than TCP's
# retransmission limit (tcp_retries2, ~15 min by default) kills connections
# with ETIMEDOUT, not a RST from the peer.

# Each function starts with: _netem_ns=""; [ "$1" != -n ] || { _netem_ns=$2; shift 2; }
_netem_tc() {
	if [ -n "$_netem_ns" ]; then tc -n "$_netem_ns" "$@"; else tc "$@"; fi
}

_netem_load() {
	grep -q '^sch_netem ' /proc/modules 2>/dev/null || modprobe sch_netem
}

netem_delay() {
	_netem_ns=""; [ "$1" != -n ] || { _netem_ns=$2; shift 2; }
	_netem_load && _netem_tc qdisc replace dev "$1" root netem delay "${2}ms"
}

netem_partition() {
	_netem_ns=""; [ "$1" != -n ] || { _netem_ns=$2; shift 2; }
	_netem_load && _netem_tc qdisc replace dev "$1" root netem loss 100%
}

netem_heal() {
	_netem_ns=""; [ "$1" != -n ] || { _netem_ns=$2; shift 2; }
	_netem_tc qdisc del dev "$1" root
}

netem_dropped() {
	_netem_ns=""; [ "$1" != -n ] || { _netem_ns=$2; shift 2; }
	_netem_tc -s qdisc show dev "$1" |
		awk '$1 == "Sent" { for (i = 1; i < NF; i++) if ($i == "(dropped") { sub(",", "", $(i + 1)); print $(i + 1); exit } }'
}
