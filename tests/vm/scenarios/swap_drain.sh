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
#     server 1 takes extents again, and every page of it verifies;
#  5. detach and rmmod leave nothing behind.
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

say "1. module, three servers, a 2-copy and a 1-copy device, a workload fills"
load_module
for n in 0 1 2; do
	SPILL_SERVER_ARGS="--admin-socket /tmp/s$n.admin" start_server "s$n" 128M
done
attach --server "$s0_url" --server "$s1_url" --server "$s2_url" --replicas 2 --size 128M \
	--name vm-drain2
dev2=$dev pid2=$attach_pid
attach --server "$s0_url" --server "$s1_url" --server "$s2_url" --replicas 1 --size 128M \
	--name vm-drain1
dev1=$dev pid1=$attach_pid
for d in "$dev2" "$dev1"; do
	mkswap "$d" >/dev/null
	swapon -d -p 5 "$d"
done
make_cgroup w 24M
in_cgroup w spill-workload --size 64M --passes 2 --random --rewrite \
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
in_cgroup w spill-workload --size 64M --passes 1 --random --rewrite --mark /tmp/e. &
wl=$!
retry 2400 test -e /tmp/e.0 || fail "second fill did not finish"
retry 2400 lends_some "$s1_url" || fail "server 1 took no extent after undrain"
echo "server 1 lends $(server_used "$s1_url") bytes"
wait $wl || fail "second workload found bad pages"
for d in "$dev2" "$dev1"; do
	[ "$(counter read_errors "$d")" = 0 ] || fail "$d: read errors"
done

say "5. detach and rmmod"
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
