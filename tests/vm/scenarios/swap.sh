# Swap on the virtio disk under memory-cgroup pressure: run with --disk.
# 64 MiB of random data go through tmpfs in a cgroup limited to 32 MiB, so at
# least half of it is swapped out; it must read back intact.
set -eu
dev=${SPILL_VM_DISK:?run with --disk SIZE}
mkswap "$dev" >/dev/null
swapon "$dev"
cg=/sys/fs/cgroup/memory/swap-test
mkdir "$cg"
echo 32M >"$cg/memory.limit_in_bytes"
echo $$ >"$cg/cgroup.procs"
before=$(dd if=/dev/urandom bs=1M count=64 2>/dev/null | tee /tmp/data | sha256sum)
used=$(awk -v dev="$dev" '$1 == dev { print $4 }' /proc/swaps)
echo "swap used: ${used} KiB"
[ "$used" -ge $((32 * 1024)) ]
after=$(sha256sum </tmp/data)
echo "before $before"
echo "after  $after"
[ "$before" = "$after" ]
echo $$ >/sys/fs/cgroup/memory/cgroup.procs
rm /tmp/data
swapoff "$dev"
rmdir "$cg"
echo "swap: ok"
