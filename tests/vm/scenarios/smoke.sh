# Smoke test of the VM harness: the guest kernel, modules, network namespaces
# over a veth pair (and tc netem partitioning it), swap, and a spillwayd on
# loopback queried by spillctl.
# Run: tests/vm/run --include build/spillwayd --include build/spillctl smoke
set -eu

if ! command -v spillwayd >/dev/null || ! command -v spillctl >/dev/null; then
	echo "smoke: run with --include build/spillwayd --include build/spillctl"
	exit 2
fi

echo "== kernel"
uname -r
case "$(uname -r)" in 6.1.*) ;; *) echo "expected a 6.1 kernel"; exit 1 ;; esac

echo "== modules"
for m in veth nbd loop rdma_rxe ib_uverbs rdma_ucm rdma_cm; do modprobe "$m"; done
test -b /dev/nbd0
lsmod | awk 'NR > 1 { print $1 }' | sort | tr '\n' ' '
echo

echo "== veth pair between two network namespaces"
ip netns add a
ip netns add b
ip link add va type veth peer name vb
ip link set va netns a
ip link set vb netns b
ip -n a addr add 10.99.0.1/24 dev va
ip -n b addr add 10.99.0.2/24 dev vb
ip -n a link set va up
ip -n b link set vb up
retry 100 ip netns exec a ping -c 1 -W 1 10.99.0.2

echo "== tc netem: a partition drops silently, healing it restores the link"
. /opt/spill/netem_lib.sh
netem_partition -n a va
if ip netns exec a ping -c 1 -W 1 10.99.0.2 >/dev/null 2>&1; then
	echo "a ping crossed the partition"
	exit 1
fi
[ "$(netem_dropped -n a va)" -ge 1 ]
netem_heal -n a va
retry 100 ip netns exec a ping -c 1 -W 1 10.99.0.2
ip netns del a
ip netns del b

echo "== swap on a loop device"
dd if=/dev/zero of=/tmp/swapfile bs=1M count=16 2>/dev/null
losetup /dev/loop0 /tmp/swapfile
mkswap /dev/loop0 >/dev/null
swapon /dev/loop0
grep -q '^/dev/loop0 ' /proc/swaps
swapoff /dev/loop0
losetup -d /dev/loop0

echo "== memory cgroup v1"
mkdir /sys/fs/cgroup/memory/smoke
echo 64M >/sys/fs/cgroup/memory/smoke/memory.limit_in_bytes
[ "$(cat /sys/fs/cgroup/memory/smoke/memory.limit_in_bytes)" = $((64 << 20)) ]
rmdir /sys/fs/cgroup/memory/smoke

echo "== spillwayd on loopback, spillctl status"
# spillwayd writes "tcp=PORT metrics=PORT" to the fifo once serving; if it
# dies first, read gets end-of-file instead.
mkfifo /tmp/ready
spillwayd --listen tcp://127.0.0.1:0 --metrics none --capacity 64M --ready-fd 3 \
	3>/tmp/ready >/tmp/spillwayd.log 2>&1 &
read -r ready </tmp/ready || { cat /tmp/spillwayd.log; exit 1; }
port=${ready#tcp=}
port=${port%% *}
spillctl --server "tcp://127.0.0.1:$port" status | tee /tmp/status
grep -q '^capacity  64.0 MiB' /tmp/status
kill %1
wait %1 || true
echo "smoke: ok"
