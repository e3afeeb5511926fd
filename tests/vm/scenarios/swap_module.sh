# spillway.ko with one spillwayd in the guest, in one boot:
#  1. swap under a memory cgroup: a workload on transparent huge pages
#     touches twice the group's limit (huge pages leave as 2 MiB writes),
#     every page checked (random order, rewritten), and a pass where the
#     whole guest is short of memory (kswapd and direct reclaim);
#  2. swapoff brings every page back, still verifying;
#  4. freed swap slots give the server its memory back (free notify,
#     discard, empty extents freed);
#  5. detach and rmmod leave nothing behind.
# Needs: spillway.ko spillwayd spillctl spill-workload libspill-mlockall.so
# swap_lib.sh (--include), modules libcrc32c crc32c_generic.
set -eu
. /opt/spill/swap_lib.sh

say "module, server, attach"
load_module
# The kernel spreads swap slots over the whole device and each 2 MiB chunk
# in use holds an extent: the device must not be larger than the pool.
start_server s0 448M
attach --server "$s0_url" --size 384M --name vm-swap
echo "attached $dev"
mkswap "$dev" >/dev/null
swapon -d "$dev"
grep -q "^$dev " /proc/swaps || fail "not swapped on"
[ "$(cat /sys/module/zswap/parameters/enabled 2>/dev/null || echo N)" = N ] || fail "zswap is on"

say "1a. cgroup of 48 MiB, 96 MiB workload on huge pages, random pass with rewrite"
make_cgroup w 48M
out0=$(vmstat pswpout)
thp0=$(vmstat thp_swpout)
in_cgroup w spill-workload --size 96M --passes 2 --random --rewrite --thp \
	--mark /tmp/w1. --wait /tmp/go1. &
wl=$!
retry 2400 test -e /tmp/w1.0 || fail "fill did not finish"
remote=$(status_field pages_remote)
used=$(server_used "$s0_url")
echo "after the fill: $remote pages remote, server lends $used bytes"
[ "$remote" -gt 8192 ] || fail "expected at least 32 MiB swapped out"
[ "$used" -gt 0 ] || fail "the server lends nothing"
# A huge page swapped out whole is one 2 MiB bio: one 512-page WRITE.
echo "$(($(vmstat thp_swpout) - thp0)) huge pages swapped out whole"
[ "$(vmstat thp_swpout)" -gt "$thp0" ] || fail "no huge page was swapped out whole"
touch /tmp/go1.1
retry 4800 test -e /tmp/w1.1 || fail "pass 1 did not finish"

say "2. swapoff brings every page back"
cgroup_limit w 1G
swapoff "$dev"
! grep -q "^$dev " /proc/swaps || fail "still swapped on"
[ "$(status_field pages_remote)" -le 1 ] || fail "pages still remote after swapoff"
touch /tmp/go1.2
wait $wl || fail "workload found bad pages"
echo "pswpout grew by $(($(vmstat pswpout) - out0)) pages"

say "4. freed slots shrink the server's memory"
# Only the swap header (page 0) holds data now: one extent at most.
retry 400 field_at_most pages_remote 1 || fail "pages still remote"
retry 400 used_at_most "$s0_url" 2097152 ||
	fail "server still lends $(server_used "$s0_url") bytes"
echo "server lends $(server_used "$s0_url") bytes; freed $(status_field pages_freed) pages, $(status_field extents_freed) extents"

say "1b. the whole guest short of memory"
swapon -d "$dev"
size=$(($(mem_available_mb) + 64))
echo "MemAvailable $(mem_available_mb) MiB, workload ${size} MiB"
out0=$(vmstat pswpout)
spill-workload --size "${size}M" --passes 1 --random --hold --mark /tmp/w2. --wait /tmp/go2. &
wl=$!
retry 2400 test -e /tmp/w2.0 || fail "fill did not finish"
touch /tmp/go2.1
retry 4800 test -e /tmp/w2.1 || fail "pass did not finish"
peak=$(server_used "$s0_url")
out=$(($(vmstat pswpout) - out0))
echo "pswpout grew by $out pages; server lends $peak bytes"
[ "$out" -gt 8192 ] || fail "expected the guest to swap more"
grep -E '^(allocstall_normal|allocstall_movable|pgscan_kswapd|pgscan_direct) ' /proc/vmstat
touch /tmp/go2.2
wait $wl || fail "workload found bad pages"

say "4b. the workload's exit frees its slots"
# Pages of other processes (and of tmpfs files) stay in swap, so the check
# is that the server lends less than before the exit and holds no extent
# without a page in it.
retry 400 used_at_most "$s0_url" $((peak * 3 / 4)) ||
	fail "server still lends $(server_used "$s0_url") of $peak bytes"
retry 400 extents_all_used || fail "the server holds empty extents"
echo "server lends $(server_used "$s0_url") bytes for $(status_field pages_remote) pages"
spillctl swap status "$dev"
[ "$(status_field read_errors)" = 0 ] || fail "read errors"

say "5. detach and rmmod"
detach_all
retry 100 used_at_most "$s0_url" 0 ||
	fail "server still lends $(server_used "$s0_url") bytes after detach"
check_dmesg
echo "swap_module: ok"
