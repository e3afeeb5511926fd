# The guest sees the NUMA nodes of `tests/vm/run --numa N` (N >= 2), each
# with memory; with spillwayd and spillctl included, spillwayd pools every node.
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

if command -v spillwayd >/dev/null && command -v spillctl >/dev/null; then
	mkfifo /tmp/ready
	spillwayd --listen tcp://127.0.0.1:0 --metrics none --capacity 64M --ready-fd 3 \
		3>/tmp/ready >/tmp/spillwayd.log 2>&1 &
	read -r ready </tmp/ready || { cat /tmp/spillwayd.log; exit 1; }
	port=${ready#tcp=}
	port=${port%% *}
	spillctl --server "tcp://127.0.0.1:$port" --json status >/tmp/status
	cat /tmp/status
	echo
	pools=$(grep -o '"node":[0-9]*' /tmp/status | wc -l)
	echo "spillwayd pools: $pools"
	[ "$pools" -eq "$want" ]
	kill %1
	wait %1 || true
fi
echo "numa: ok"
