# NUMA placement of spillwayd on the guest's nodes (tests/vm/run --numa 2,
# with spillwayd, spillctl and numa_alloc included; vCPU i is on node i):
#   - each pool's pages are all on its own node (/proc/PID/numa_maps);
#   - workers are spread over the nodes and pinned to their CPUs;
#   - a connection through a `?node=1` listener goes to a node-1 worker and
#     its "any node" extents (binary ALLOC and AllocExtent) come from node 1,
#     while one through a plain loopback listener gets the emptier pool;
#   - with SPILL_VM_NIC_NODE=1 (vm.cmake puts a virtio NIC behind a PCI
#     expander bridge on node 1), a listener on the NIC's address takes
#     node 1 from the device, and so do its connections' extents;
#   - once node 1's pool is full, its allocations fall back to node 0;
#   - `spillctl status` shows capacity, used and free per node.
# Without the programs it only checks that the guest has the nodes.
set -eu
want=$SPILL_VM_NUMA
[ "$want" -ge 2 ] || { echo "run with --numa N, N >= 2"; exit 2; }
set -- /sys/devices/system/node/node[0-9]*
nodes=$#
echo "nodes: $nodes (want $want)"
[ "$nodes" -eq "$want" ]
for n in "$@"; do
	kb=$(awk '/MemTotal/ { print $4 }' "$n/meminfo")
	echo "${n##*/}: ${kb} kB, cpus $(cat "$n/cpulist")"
	[ "$kb" -gt 0 ]
done

for p in spillwayd spillctl numa_alloc; do
	command -v $p >/dev/null || { echo "numa: $p not included, placement not checked"; exit 0; }
done
[ "$want" -eq 2 ] || { echo "placement checks expect --numa 2"; exit 2; }

fail() { echo "numa: FAIL: $*"; exit 1; }

# The NIC, if there is one: an address of its own, and a listener on it
# (not loopback, so --insecure).
nic_listen=""
if [ -n "${SPILL_VM_NIC_NODE:-}" ]; then
	[ "$SPILL_VM_NIC_NODE" = 1 ] || fail "the checks below expect SPILL_VM_NIC_NODE=1"
	modprobe virtio_net
	[ -e /sys/class/net/eth0 ] || fail "SPILL_VM_NIC_NODE set but no eth0"
	echo "eth0: $(readlink -f /sys/class/net/eth0/device)"
	ip addr add 10.77.0.1/24 dev eth0
	ip link set eth0 up
	nic_listen="--listen tcp://10.77.0.1:0 --insecure"
fi

# 64 MiB over two nodes: 32 MiB, 16 extents of 2 MiB, per pool.
MiB=1048576
pool=$((32 * MiB))
mkfifo /tmp/ready
# shellcheck disable=SC2086 # nic_listen is two words or none
spillwayd --listen 'tcp://127.0.0.1:0?node=1' --listen tcp://127.0.0.1:0 $nic_listen \
	--metrics none --capacity 64M --workers 4 --grace 600 --log-level debug \
	--ready-fd 3 3>/tmp/ready >/tmp/spillwayd.log 2>&1 &
pid=$!
read -r ready </tmp/ready || { cat /tmp/spillwayd.log; exit 1; }
port=${ready#tcp=}
port=${port%% *}
node1_url=tcp://127.0.0.1:$port
# The second listener's port, from its log line (no "(node N)" after it).
plain_port=$(sed -n 's|.*listening on tcp://127.0.0.1:\([0-9]*\)$|\1|p' /tmp/spillwayd.log)
[ -n "$plain_port" ] || { cat /tmp/spillwayd.log; fail "no plain listener"; }
plain_url=tcp://127.0.0.1:$plain_port
grep 'listening on' /tmp/spillwayd.log

echo "== pools: every page on its own node"
# A pool mapping is bound to its node ("bind:N"); its pre-faulted pages are
# counted per node as N<node>=<pages>.
grep ' bind' /proc/$pid/numa_maps
for n in 0 1; do
	awk -v n=$n -v want=$((pool / 4096)) '
		{ bound = "" }
		$2 ~ /^bind/ { split($2, p, ":"); bound = p[2] }
		bound == n {
			found++
			for (i = 3; i <= NF; i++)
				if ($i ~ /^N[0-9]+=/) {
					split(substr($i, 2), kv, "=")
					if (kv[1] == n) on += kv[2]; else off += kv[2]
				}
		}
		END {
			printf "pool on node %d: %d pages there, %d elsewhere (want %d, 0)\n", n, on, off, want
			exit !(found == 1 && on == want && off == 0)
		}' /proc/$pid/numa_maps || fail "pool of node $n is not all on node $n"
done

echo "== workers: two per node, pinned to its CPU"
grep 'workers on' /tmp/spillwayd.log
grep -q 'workers on node 0: 0 2; node 1: 1 3$' /tmp/spillwayd.log || fail "worker placement"
on0=0 on1=0
for t in /proc/$pid/task/*; do
	case "$(awk '/^Cpus_allowed_list/ { print $2 }' "$t/status")" in
		0) on0=$((on0 + 1)) ;;
		1) on1=$((on1 + 1)) ;;
	esac
done
echo "threads pinned to cpu 0: $on0, cpu 1: $on1"
[ "$on0" -eq 2 ] && [ "$on1" -eq 2 ] || fail "expected 2 worker threads per CPU"

# node_stat NODE FIELD: that field of the node's entry in spillctl's JSON.
node_stat() {
	spillctl --server "$node1_url" --json status | grep -o "{\"node\":$1,[^}]*}" |
		sed -n "s/.*\"$2\":\([0-9]*\).*/\1/p"
}
# expect_used USED0 USED1: per-node use (bytes) as spillctl reports it.
expect_used() {
	u0=$(node_stat 0 used_bytes) u1=$(node_stat 1 used_bytes)
	f0=$(node_stat 0 free_bytes) f1=$(node_stat 1 free_bytes)
	echo "used: node 0 $((u0 / MiB)) MiB, node 1 $((u1 / MiB)) MiB;" \
		"free: node 0 $((f0 / MiB)) MiB, node 1 $((f1 / MiB)) MiB"
	[ "$u0" -eq "$1" ] && [ "$u1" -eq "$2" ] || fail "expected used $(($1 / MiB)) / $(($2 / MiB)) MiB"
	[ "$f0" -eq $((pool - $1)) ] && [ "$f1" -eq $((pool - $2)) ] || fail "free != capacity - used"
}
# allocs NODE FILE: every extent numa_alloc printed came from NODE.
allocs() {
	cat "$2"
	! grep -v " node $1\$" "$2" || fail "an extent not on node $1"
}

echo "== binary ALLOC, any node, through the node=1 listener"
# Both pools are empty: without the listener's node the tie would go to node 0.
numa_alloc "$node1_url" bin bin 1
expect_used 0 $((2 * MiB))

echo "== AllocExtent, any node, through the plain listener: the emptier pool"
numa_alloc "$plain_url" plain ctrl 1 >/tmp/plain
allocs 0 /tmp/plain
expect_used $((2 * MiB)) $((2 * MiB))

fill=15
if [ -n "$nic_listen" ]; then
	echo "== AllocExtent, any node, through the listener on the node-1 NIC"
	# The listener found its node from the device, with no ?node=.
	nic_port=$(sed -n 's|.*listening on tcp://10.77.0.1:\([0-9]*\) (node 1)$|\1|p' \
		/tmp/spillwayd.log)
	[ -n "$nic_port" ] || fail "the NIC's listener did not take node 1"
	# Both pools hold 2 MiB: a tie, which without a node goes to node 0.
	numa_alloc "tcp://10.77.0.1:$nic_port" nic ctrl 1 >/tmp/nic
	allocs 1 /tmp/nic
	expect_used $((2 * MiB)) $((4 * MiB))
	fill=14
fi

echo "== AllocExtent, any node, through the node=1 listener: fill node 1"
numa_alloc "$node1_url" fill ctrl $fill >/tmp/fill
allocs 1 /tmp/fill
[ "$(wc -l </tmp/fill)" -eq $fill ]
expect_used $((2 * MiB)) "$pool"

echo "== node 1 full: falls back to node 0"
numa_alloc "$node1_url" spill ctrl 2 >/tmp/spill
allocs 0 /tmp/spill
expect_used $((6 * MiB)) "$pool"

echo "== connections: the node=1 listener's went to node-1 workers, round robin"
grep 'to worker' /tmp/spillwayd.log | sed 's/.*: to worker/to worker/'
grep 'to worker' /tmp/spillwayd.log | grep "connection's node 1" >/tmp/routed
! grep -v '(node 1)' /tmp/routed || fail "a node-1 connection on a node-0 worker"
grep -q 'to worker 1 ' /tmp/routed && grep -q 'to worker 3 ' /tmp/routed ||
	fail "node-1 connections not spread over workers 1 and 3"
grep -q "connection's node -1" /tmp/spillwayd.log || fail "plain listener has a node"

echo "== spillctl status"
spillctl --server "$node1_url" status | tee /tmp/status
grep -Eq '^NODE +CAPACITY +USED +FREE +USE%$' /tmp/status || fail "no FREE column"
grep -Eq '^0 +32\.0 MiB +6\.0 MiB +26\.0 MiB +18\.8%$' /tmp/status || fail "node 0 line"
grep -Eq '^1 +32\.0 MiB +32\.0 MiB +0 B +100\.0%$' /tmp/status || fail "node 1 line"

kill $pid
wait $pid || true
echo "numa: ok"
