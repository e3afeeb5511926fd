# Benchmark, not a test: the same workload with the same RAM (a 64 MiB
# memory cgroup, 192 MiB touched) swapping to spillway.ko and to a virtio
# disk (/dev/vda, run with --disk, backed by a sparse file on the host).
# Three phases: the fill (swap-out), a random pass that rewrites what it
# reads (swap-in and swap-out together), and a pass in order (swap-in,
# where spillway.ko prefetches). Prints pages/s per phase and the
# spillway/disk ratios; writes $SPILL_VM_OUT/swap-bench.json.
#
# Two placements of the server:
#  - in this guest (default): one server, then two servers with two copies
#    of every page. Under TCG both ends of the TCP connection (module and
#    server) are emulated guest code while virtio-blk I/O is done by qemu on
#    the host: the ratio is a floor for spillway.
#  - on the host (BENCH_REMOTE=tcp://ADDR:PORT, set by tests/vm/swap-bench-remote):
#    spillwayd runs natively in a network namespace, reached over a tap
#    device and the guest's virtio NIC (eth0, BENCH_GUEST_ADDR), with the
#    key in BENCH_PSK: the fair comparison with a virtio disk, whose I/O is
#    also done natively by the host. The in-guest figures follow.
# Env: BENCH_LIMIT, BENCH_SIZE, BENCH_MODULE_PARAMS (e.g. "invalidate=0
# readahead=0"), BENCH_REMOTE, BENCH_GUEST_ADDR, BENCH_PSK.
set -eu
. /opt/spill/swap_lib.sh
disk=${SPILL_VM_DISK:?run with --disk SIZE}
LIMIT=${BENCH_LIMIT:-64M}
SIZE=${BENCH_SIZE:-192M}

# run LABEL DEV: the workload in the cgroup, swapping to DEV; prints one
# line "LABEL fill random inorder" of pages/s.
run() {
	mkswap "$2" >/dev/null
	swapon -d "$2"
	in_cgroup bench spill-workload --size "$SIZE" --order r,s --rewrite >/tmp/bench.out ||
		fail "$1: bad pages"
	swapoff "$2"
	awk -v l="$1" '/pages\/s/ { gsub(/[()]/, ""); r[++n] = $(NF-1) }
		END { printf "%s %s %s %s\n", l, r[1], r[2], r[3] }' /tmp/bench.out
}

load_module ${BENCH_MODULE_PARAMS:-}
make_cgroup bench "$LIMIT"
echo "workload $SIZE in a $LIMIT memory cgroup; pages/s: fill (swap-out), random+rewrite, in order"

if [ -n "${BENCH_REMOTE:-}" ]; then
	modprobe virtio_net
	retry 100 test -e /sys/class/net/eth0 || fail "no eth0 (run with --module virtio_net and a NIC)"
	ip link set lo up
	ip link set eth0 up
	ip addr add "${BENCH_GUEST_ADDR:?}" dev eth0
	attach --server "$BENCH_REMOTE" --psk-file "${BENCH_PSK:?}" --size 320M --name bench-remote
	run spillway-host "$dev" | tee /tmp/r.remote
	spillctl swap status "$dev" | sed -n '2,6p'
	spillctl swap detach "$dev"
	retry 200 sh -c "! kill -0 $attach_pid 2>/dev/null"
fi

# Pools are locked in this guest's RAM: one at a time, devices no larger.
start_server s0 384M
attach --server "$s0_url" --size 320M --name bench1
run spillway "$dev" | tee /tmp/r.spill
spillctl swap status "$dev" | sed -n '2,6p'
spillctl swap detach "$dev"
retry 200 sh -c "! kill -0 $attach_pid 2>/dev/null"
kill "$s0_pid"
wait "$s0_pid" || true

start_server s1 224M
start_server s2 224M
attach --server "$s1_url" --server "$s2_url" --replicas 2 --size 192M --name bench2
run spillway-2copies "$dev" | tee /tmp/r.spill2
spillctl swap detach "$dev"
retry 200 sh -c "! kill -0 $attach_pid 2>/dev/null"
kill "$s1_pid" "$s2_pid"

run virtio-disk "$disk" | tee /tmp/r.disk

# Rows: each spillway placement, then the disk (always last).
rows="/tmp/r.spill /tmp/r.spill2 /tmp/r.disk"
[ -z "${BENCH_REMOTE:-}" ] || rows="/tmp/r.remote $rows"
# shellcheck disable=SC2086 # rows is a list of files
cat $rows | awk '
	{ name[NR] = $1; for (i = 2; i <= 4; i++) v[NR, i] = $i }
	END {
		split("fill random in-order", ph, " ")
		printf "%-18s %10s %10s %10s\n", "pages/s", ph[1], ph[2], ph[3]
		for (r = 1; r <= NR; r++)
			printf "%-18s %10d %10d %10d\n", name[r], v[r, 2], v[r, 3], v[r, 4]
		for (r = 1; r < NR; r++)
			printf "%-18s %10.2f %10.2f %10.2f\n", name[r] "/disk", v[r, 2] / v[NR, 2],
				v[r, 3] / v[NR, 3], v[r, 4] / v[NR, 4]
	}'
# shellcheck disable=SC2086
cat $rows | awk -v limit="$LIMIT" -v size="$SIZE" -v kver="$(uname -r)" '
	BEGIN { printf "{\"kernel\":\"%s\",\"limit\":\"%s\",\"size\":\"%s\",\"pages_per_s\":{", kver, limit, size }
	{ printf "%s\"%s\":{\"fill\":%s,\"random\":%s,\"in_order\":%s}", (NR > 1 ? "," : ""), $1, $2, $3, $4 }
	END { print "}}" }' >"$SPILL_VM_OUT/swap-bench.json"
cat "$SPILL_VM_OUT/swap-bench.json"
rmmod spillway
