# spillway.ko with one spillwayd in the guest, in one boot:
#  1. swap under a memory cgroup: a workload on transparent huge pages
#     touches twice the group's limit (huge pages leave as 2 MiB writes),
#     every page checked (random order, rewritten), and a pass where the
#     whole guest is short of memory (kswapd and direct reclaim);
#  2. swapoff brings every page back, still verifying;
#  4. freed swap slots give the server its memory back (free notify,
#     discard, empty extents freed);
#  4c. every statistics file in sysfs reads a number, and agrees with
#      spillctl swap status; 4d. a page table too large is refused;
#  5. detach and rmmod leave nothing behind;
#  6. module parameters at edge values: bad ones refused at load and write.
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
# Stable writes (compat.h): swap must not change a page under writeback.
[ "$(cat "/sys/block/${dev#/dev/}/queue/stable_writes")" = 1 ] || fail "no stable writes"
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

say "4c. statistics in sysfs"
sys=/sys/block/${dev#/dev/}/spillway
for f in reads writes zero_reads read_errors write_errors failovers degraded_writes \
	pages_freed invalidates extents_allocated extents_freed ra_pages ra_hits \
	fenced_writes timeouts repairs fast_fails read_fallbacks pages_remote extents_used; do
	v=$(cat "$sys/$f") || fail "no $sys/$f"
	case $v in '' | *[!0-9]*) fail "$sys/$f reads '$v'" ;; esac
done
[ "$(cat "$sys/writes")" -gt 0 ] || fail "sysfs counts no writes"
sysfs_matches_status() { [ "$(cat "$sys/pages_remote")" = "$(status_field pages_remote)" ]; }
retry 100 sysfs_matches_status || fail "sysfs pages_remote differs from spillctl swap status"
# One server, one copy: it holds every remote page (the swap header at least).
server_holds_all() {
	set -- $(cat "$sys/servers")
	[ "$#" = 11 ] && [ "$1" = 0 ] && [ "$2" = "$s0_url" ] && [ "$3" = up ] && [ "$4" -ge 1 ] &&
		[ "$6" = "$(cat "$sys/extents_used")" ] && [ "$7" -ge 1 ] &&
		[ "$7" = "$(cat "$sys/pages_remote")" ]
}
cat "$sys/servers"
retry 100 server_holds_all || fail "servers: $(cat "$sys/servers")"
! (echo 1 >"$sys/reads") 2>/dev/null || fail "a statistics file is writable"

say "4d. a page table too large for memory is refused"
# 4 KiB extents on 256 GiB: a struct per extent, several GiB of table.
rm -f /tmp/s4k.ready
mkfifo /tmp/s4k.ready
spillwayd --listen tcp://127.0.0.1:0 --metrics none --capacity 16M --extent-size 4K \
	--ready-fd 3 3>/tmp/s4k.ready >>/tmp/s4k.log 2>&1 &
s4k_pid=$!
read -r s4k </tmp/s4k.ready || fail "spillwayd with 4K extents did not start"
s4k=${s4k#tcp=}
! spillctl swap attach --server "tcp://127.0.0.1:${s4k%% *}" --size 256G --name big \
	2>/tmp/big.err || fail "a 256 GiB device with 4 KiB extents was created"
cat /tmp/big.err
grep -q 'Argument list too long' /tmp/big.err || fail "not refused with E2BIG"
dmesg | grep -q 'spillway: a 262144 MiB device with 4 KiB extents needs a [0-9]* MiB page table' ||
	fail "no message says why"
kill "$s4k_pid"
wait "$s4k_pid" || true

say "5. detach and rmmod"
detach_all
retry 100 used_at_most "$s0_url" 0 ||
	fail "server still lends $(server_used "$s0_url") bytes after detach"

say "6. module parameters at edge values"
params=/sys/module/spillway/parameters
! insmod /opt/spill/spillway.ko io_timeout=0 2>/dev/null || fail "insmod io_timeout=0 succeeded"
dmesg | grep -q 'spillway: io_timeout must be 1 to 3600 seconds' || fail "no message for io_timeout=0"
! insmod /opt/spill/spillway.ko readahead=33 2>/dev/null || fail "insmod readahead=33 succeeded"
! insmod /opt/spill/spillway.ko io_timeout=4294967297 2>/dev/null || fail "insmod io_timeout wrapped"
insmod /opt/spill/spillway.ko io_timeout=3600 reconnect_wait=0 readahead=32 ||
	fail "insmod at the upper edges"
[ "$(cat $params/io_timeout) $(cat $params/reconnect_wait) $(cat $params/readahead)" = "3600 0 32" ] ||
	fail "parameters not taken"
for v in 0 3601 -1 junk 4294967297 ''; do
	param_refused io_timeout "$v" || fail "io_timeout took '$v'"
done
param_refused reconnect_wait 3601 || fail "reconnect_wait took 3601"
param_refused readahead 33 || fail "readahead took 33"
param_refused invalidate maybe || fail "invalidate took 'maybe'"
param_refused repair maybe || fail "repair took 'maybe'"
dmesg | grep -q 'spillway: repair must be a boolean' || fail "no message for repair=maybe"
echo 1 >$params/io_timeout && [ "$(cat $params/io_timeout)" = 1 ] || fail "io_timeout=1 refused"
echo 0 >$params/readahead && echo N >$params/invalidate || fail "edge values refused"
rmmod spillway || fail "rmmod"
check_dmesg
echo "swap_module: ok"
