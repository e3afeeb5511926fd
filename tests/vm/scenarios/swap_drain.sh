# A drained server is emptied of live swap devices' pages (kmod/migrate.c,
# issue 14 point 3): three spillwayd, a device with 2 copies and one with 1
# copy on the same servers, both swap at one priority so the workload's
# pages go to both, in one boot:
#  1. the workload fills its memory (most of it in swap); every server
#     lends memory to the devices;
#  2. as a random rewrite pass begins, `spillctl server drain --no-wait`
#     on server 1: both devices see it draining; server 1 ends up lending
#     0 bytes (polled with a bound) while the workload keeps swapping; the
#     devices counted the pages they moved; no read failed;
#  3. a second rewrite pass after the drain: every page verifies;
#  4. `server undrain`: the devices see it, the workload exits (its chunks
#     are freed and go back to their home servers) and a new one fills:
#     server 1 takes extents again;
#  5. `spillctl client reclaim` of 2 MiB from the 2-copy device on server
#     1 (the new workload holds its pages): the device moves copies off it
#     and answers; the server's bytes for the device drop by at least that
#     much and its client stats show the answer; a pass verifies every
#     page;
#     The devices registered at priority 0 (asked -1000, raised to the
#     server's default for a client session) and 7;
#  6. detach and rmmod leave nothing behind.
# Needs: spillway.ko spillwayd spillctl spill-workload libspill-mlockall.so
# swap_lib.sh (--include), modules libcrc32c crc32c_generic.
set -eu
. /opt/spill/swap_lib.sh

# draining_is DEV SERVER WORD: the last field of the device's sysfs
# "servers" line for SERVER ("draining" or "-").
draining_is() {
	[ "$(awk -v s="$2" '$1 == s { print $NF }' "/sys/block/${1#/dev/}/spillway/servers")" = "$3" ]
}

lends_some() { ! used_at_most "$1" 0; }
# client_json SERVER NAME: that client's line of `spillctl --json clients`;
# client_used: its used bytes; reclaim_answered: a reclaim answer shows.
client_json() {
	eval "_url=\$s$1_url"
	spillctl --server "$_url" --json clients --local | grep -o "{\"name\":\"$2\"[^}]*}"
}
client_used() { client_json "$1" "$2" | sed -n 's/.*"used_bytes":\([0-9]*\).*/\1/p'; }
reclaim_answered() { client_json "$1" "$2" | grep -q '"last_reclaim_id":[1-9]'; }
# client_below SERVER NAME BYTES: the client uses less than BYTES there.
client_below() {
	_cu=$(client_used "$1" "$2")
	[ -n "$_cu" ] && [ "$_cu" -lt "$3" ]
}

say "1. module, three servers, a 2-copy and a 1-copy device, a workload fills"
load_module
for n in 0 1 2; do
	SPILL_SERVER_ARGS="--admin-socket /tmp/s$n.admin" start_server "s$n" 128M
done
# Busybox's swapon takes no priority: spillctl swaps both on at 5.
attach --server "$s0_url" --server "$s1_url" --server "$s2_url" --replicas 2 --size 128M \
	--name vm-drain2 --swapon=5
dev2=$dev pid2=$attach_pid
attach --server "$s0_url" --server "$s1_url" --server "$s2_url" --replicas 1 --size 128M \
	--name vm-drain1 --swapon=5 --priority 7
dev1=$dev pid1=$attach_pid
for d in "$dev2" "$dev1"; do
	grep -q "^$d " /proc/swaps || fail "$d not swapped on"
done
make_cgroup w 12M
in_cgroup w spill-workload --size 32M --passes 2 --random --rewrite \
	--mark /tmp/d. --wait /tmp/gd. &
wl=$!
retry 2400 test -e /tmp/d.0 || fail "fill did not finish"
for n in 0 1 2; do
	eval "u=\$(server_used \"\$s${n}_url\")"
	echo "after the fill: server $n lends $u bytes"
	[ "$u" -gt 0 ] || fail "server $n holds no page: nothing to drain"
done

say "2. drain server 1 as a rewrite pass begins"
touch /tmp/gd.1
spillctl server drain unix:///tmp/s1.admin --no-wait || fail "server drain"
for d in "$dev2" "$dev1"; do
	retry 200 draining_is "$d" 1 draining || fail "$d does not see server 1 draining"
done
retry 3000 used_at_most "$s1_url" 0 || {
	cat "/sys/block/${dev2#/dev/}/spillway/servers" "/sys/block/${dev1#/dev/}/spillway/servers"
	fail "server 1 still lends $(server_used "$s1_url") bytes"
}
if [ -e /tmp/d.1 ]; then
	echo "server 1 empty (the rewrite pass had ended)"
else
	echo "server 1 empty while the rewrite pass goes on"
fi
for d in "$dev2" "$dev1"; do
	counter_above migrated 0 "$d" || fail "$d moved no page"
	[ "$(counter read_errors "$d")" = 0 ] || fail "$d: read errors"
	echo "$d: migrated $(counter migrated "$d") pages"
done

say "3. a rewrite pass with server 1 drained: every page verifies"
retry 4800 test -e /tmp/d.1 || fail "pass 1 did not finish"
touch /tmp/gd.2
wait $wl || fail "workload found bad pages"
used_at_most "$s1_url" 0 || fail "server 1 took extents while draining"

say "4. undrain: server 1 takes extents again"
spillctl server undrain unix:///tmp/s1.admin || fail "server undrain"
for d in "$dev2" "$dev1"; do
	retry 200 draining_is "$d" 1 - || fail "$d still sees server 1 draining"
done
in_cgroup w spill-workload --size 32M --passes 1 --random --mark /tmp/e. --wait /tmp/ge. &
wl=$!
retry 2400 test -e /tmp/e.0 || fail "second fill did not finish"
retry 2400 lends_some "$s1_url" || fail "server 1 took no extent after undrain"
echo "server 1 lends $(server_used "$s1_url") bytes"

say "5. Reclaim 2 MiB of a device on server 1: it moves copies and answers"
# The 2-copy device: two thirds of its chunks have a copy on server 1.
before=$(client_used 1 vm-drain2)
echo "vm-drain2 uses $before bytes on server 1"
[ "$before" -ge $((2 << 20)) ] || fail "vm-drain2 has only $before bytes on server 1"
spillctl --server unix:///tmp/s1.admin client reclaim vm-drain2 --bytes 2M \
	--deadline-ms 20000 || fail "client reclaim"
retry 600 reclaim_answered 1 vm-drain2 || fail "no reclaim answer from vm-drain2"
retry 200 client_below 1 vm-drain2 $((before - (2 << 20) + 1)) ||
	fail "reclaim freed only $((before - $(client_used 1 vm-drain2))) bytes"
echo "vm-drain2 on server 1: $before -> $(client_used 1 vm-drain2) bytes; $(client_json 1 vm-drain2)"
freed=$(client_json 1 vm-drain2 | sed -n 's/.*"last_reclaim_freed_bytes":\([0-9]*\).*/\1/p')
[ "$freed" -ge $((2 << 20)) ] || fail "the answer says $freed bytes freed"
# Without --priority the device asks -1000, which the server raises to its
# --default-priority (0) for a session that is not an operator's; 7 stays.
client_json 1 vm-drain2 | grep -q '"priority":0,' || fail "vm-drain2 is not at priority 0"
client_json 1 vm-drain1 | grep -q '"priority":7,' || fail "vm-drain1 is not at --priority 7"
touch /tmp/ge.1
wait $wl || fail "second workload found bad pages"
for d in "$dev2" "$dev1"; do
	[ "$(counter read_errors "$d")" = 0 ] || fail "$d: read errors"
done

say "6. detach and rmmod"
for d in "$dev2" "$dev1"; do
	swapoff "$d"
done
spillctl swap detach "$dev2" || fail "detach $dev2"
spillctl swap detach "$dev1" || fail "detach $dev1"
for p in "$pid2" "$pid1"; do
	retry 200 sh -c "! kill -0 $p 2>/dev/null" || fail "spillctl did not exit after detach"
	wait "$p" || fail "spillctl exited with an error"
done
rmmod spillway || fail "rmmod"
for n in 0 1 2; do
	eval "url=\$s${n}_url"
	retry 100 used_at_most "$url" 0 || fail "server $n still lends $(server_used "$url") bytes"
done
check_dmesg
echo "swap_drain: ok"
