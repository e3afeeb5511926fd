# Swap through the kernel's own nbd driver onto a spillwayd NBD export: no
# Spillway code in the kernel. spillwayd (pool locked, outside the cgroup)
# exports 128 MiB; nbd-client attaches it as /dev/nbd0; mkswap, swapon; then
# 64 MiB of random data go through tmpfs in a memory cgroup limited to
# 32 MiB, twice what the workload may keep in RAM, so at least half of it
# lives in the export. Every byte is checked (sha256 before and after), and
# the export must hold the swapped pages. Every wait polls with a bound.
# Needs: spillwayd spillctl nbd-client (--include), module nbd.
set -eu

say() { echo "== $*"; }
fail() {
	echo "FAIL: $*"
	exit 1
}
cleanup() {
	grep -q '^/dev/nbd0 ' /proc/swaps 2>/dev/null && swapoff /dev/nbd0
	nbd-client -d /dev/nbd0 >/dev/null 2>&1 || true
	return 0
}
trap cleanup EXIT

modprobe nbd nbds_max=2
# As for any network block device on the same machine: a larger emergency
# reserve, so the swap-out path's socket buffers find memory.
echo 32768 >/proc/sys/vm/min_free_kbytes

mkfifo /tmp/ready
spillwayd --listen tcp://127.0.0.1:0 --metrics none --capacity 160M --mlock --grace 0 \
	--nbd 127.0.0.1:0 --admin-socket /tmp/spillwayd.sock \
	--ready-fd 3 3>/tmp/ready >>/tmp/spillwayd.log 2>&1 &
read -r ready </tmp/ready || { cat /tmp/spillwayd.log; fail "spillwayd did not start"; }
tcp=${ready#tcp=}
tcp=${tcp%% *}
nbd=${ready##*nbd=}
url=tcp://127.0.0.1:$tcp
say "spillwayd: $ready"
# An operator command: over the admin socket, as root.
spillctl --server unix:///tmp/spillwayd.sock export create swap0 --size 128M

say "nbd-client attaches the export"
nbd-client -N swap0 127.0.0.1 "$nbd" /dev/nbd0 -b 4096 -s || fail "nbd-client"
retry 100 test "$(cat /sys/block/nbd0/size)" = 262144 || fail "nbd0 size $(cat /sys/block/nbd0/size)"
mkswap /dev/nbd0 >/dev/null
swapon /dev/nbd0

say "64 MiB through a 32 MiB cgroup"
cg=/sys/fs/cgroup/memory/nbd-test
mkdir "$cg"
echo 32M >"$cg/memory.limit_in_bytes"
echo $$ >"$cg/cgroup.procs"
before=$(dd if=/dev/urandom bs=1M count=64 2>/dev/null | tee /tmp/data | sha256sum)
used=$(awk '$1 == "/dev/nbd0" { print $4 }' /proc/swaps)
echo "swap used: ${used} KiB"
[ "$used" -ge $((32 * 1024)) ] || fail "only ${used} KiB swapped"
spillctl --server "$url" export list
held=$(spillctl --server "$url" --json export list | sed -n 's/.*"used_bytes":\([0-9]*\).*/\1/p')
[ "$held" -ge $((32 << 20)) ] || fail "export holds only $held bytes"
after=$(sha256sum </tmp/data)
echo "before $before"
echo "after  $after"
[ "$before" = "$after" ] || fail "data changed"
echo $$ >/sys/fs/cgroup/memory/cgroup.procs
rm /tmp/data
swapoff /dev/nbd0
rmdir "$cg"
nbd-client -d /dev/nbd0 >/dev/null 2>&1 || true
grep -q "nbd: export 'swap0' created" /tmp/spillwayd.log
echo "nbd swap: ok"
