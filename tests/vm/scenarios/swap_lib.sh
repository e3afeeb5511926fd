# Helpers for the spillway.ko scenarios (swap_module.sh, swap_replicas.sh,
# swap_bench.sh); they source /opt/spill/swap_lib.sh (--include'd).
# Every wait polls a condition with a bound; none sleeps for a fixed time.

say() { echo "== $*"; }
fail() {
	echo "FAIL: $*"
	exit 1
}

# However the scenario ends, bring swapped pages home while the servers it
# started still run: the guest's own processes (init too) may have pages
# there, and the harness kills the servers with the scenario.
swap_cleanup() {
	_rc=$?
	if [ "$_rc" != 0 ]; then
		echo "-- on failure: connection events, TCP drops of emergency-reserve buffers"
		dmesg | grep -E 'spillway[0-9]*: server|Out of memory|oom-kill' | tail -20
		awk '/^TcpExt:/ { if (!n) { for (i = 1; i <= NF; i++) if ($i == "PFMemallocDrop") c = i; n = 1 } else print "PFMemallocDrop", $c }' /proc/net/netstat
		for _l in /tmp/attach.err /tmp/*.log; do
			[ -s "$_l" ] && { echo "-- $_l (last lines)"; tail -15 "$_l"; }
		done
	fi
	for _d in /dev/spillway*; do
		grep -q "^$_d " /proc/swaps 2>/dev/null && swapoff "$_d"
	done
	return 0
}
trap swap_cleanup EXIT

# The module and the crc32c it needs (busybox modprobe ignores softdeps).
# As for any network block device: a larger emergency reserve (the
# module's sockets dip into it to finish a swap-out) and kswapd waking
# earlier, so that the server, on this same machine, seldom has to wait
# for memory that only its own answers can free.
load_module() {
	echo 32768 >/proc/sys/vm/min_free_kbytes
	echo 200 >/proc/sys/vm/watermark_scale_factor
	modprobe crc32c_generic
	modprobe libcrc32c
	insmod /opt/spill/spillway.ko "$@"
	retry 100 test -c /dev/spillway-ctl || fail "no /dev/spillway-ctl"
}

# start_server NAME CAPACITY [PORT [NETNS ADDR]]: a spillwayd on loopback
# (PORT, or any free one; 0 for any), with all its memory locked: it serves
# swap on this very machine, so none of its own pages may be swapped out.
# With NETNS and ADDR, it runs in that network namespace and listens on ADDR
# (its end of a veth pair; --insecure: no key, as on loopback, though the
# address is not a loopback one). Sets NAME_url and NAME_pid.
# SPILL_SERVER_ARGS: more spillwayd options (swap_drain.sh: an admin socket).
start_server() {
	_name=$1
	_addr=${5:-127.0.0.1}
	_in_ns=""
	_insecure=""
	# exec would find busybox's ip applet first: iproute2's, by path.
	[ -z "${4:-}" ] || { _in_ns="/opt/spill/ip netns exec $4"; _insecure=--insecure; }
	rm -f "/tmp/$_name.ready"
	mkfifo "/tmp/$_name.ready"
	(
		ulimit -s 256
		# shellcheck disable=SC2086 # _in_ns and _insecure are words or nothing
		LD_PRELOAD=/opt/spill/libspill-mlockall.so exec $_in_ns spillwayd \
			--listen "tcp://$_addr:${3:-0}" $_insecure --metrics none --capacity "$2" --mlock \
			--grace 300 --ready-fd 3 ${SPILL_SERVER_ARGS:-} 3>"/tmp/$_name.ready" >>"/tmp/$_name.log" 2>&1
	) &
	_pid=$!
	read -r _ready <"/tmp/$_name.ready" || { cat "/tmp/$_name.log"; fail "spillwayd $_name did not start"; }
	_port=${_ready#tcp=}
	_port=${_port%% *}
	eval "${_name}_url=tcp://$_addr:$_port ${_name}_pid=$_pid"
}

# server_used URL: the bytes the server has lent (all clients).
server_used() {
	spillctl --server "$1" --json status |
		sed -n 's/.*"capacity_bytes":[0-9]*,"used_bytes":\([0-9]*\).*/\1/p'
}

# used_at_most URL BYTES: the server lends no more than BYTES.
used_at_most() {
	_u=$(server_used "$1")
	[ -n "$_u" ] && [ "$_u" -le "$2" ]
}

# attach ARGS...: spillctl swap attach --foreground in the background; sets
# dev and attach_pid once the device path is printed.
attach() {
	rm -f /tmp/attach.out
	spillctl swap attach --foreground "$@" >/tmp/attach.out 2>/tmp/attach.err &
	attach_pid=$!
	retry 400 grep -qs '^/dev/spillway' /tmp/attach.out || { cat /tmp/attach.err; fail "attach"; }
	dev=$(cat /tmp/attach.out)
}

# status_field NAME: a number from the device's `spillctl swap status --json`.
status_field() {
	spillctl swap status --json "$dev" | sed -n "s/.*\"$1\":\([0-9]*\).*/\1/p"
}

# field_at_most NAME N: status_field NAME is no more than N.
field_at_most() {
	_v=$(status_field "$1")
	[ -n "$_v" ] && [ "$_v" -le "$2" ]
}

# extents_all_used: every extent the module holds has a page in it.
extents_all_used() {
	_held=$(spillctl swap status --json "$dev" | sed -n 's/.*"servers":\[.*"extents":\([0-9]*\)}.*/\1/p')
	[ -n "$_held" ] && [ "$_held" -le "$(status_field pages_remote)" ]
}

# A memory cgroup (v1) with a limit; in_cgroup runs a command inside it.
make_cgroup() {
	mkdir -p "/sys/fs/cgroup/memory/$1"
	cgroup_limit "$1" "$2"
}
# cgroup_limit NAME LIMIT: v1's memory.limit_in_bytes, or memory.max where
# the guest's init mounted cgroup2 there instead (6.12 has no v1 memory
# controller).
cgroup_limit() {
	_f=memory.limit_in_bytes
	[ ! -e /sys/fs/cgroup/memory/cgroup.controllers ] || _f=memory.max
	echo "$2" >"/sys/fs/cgroup/memory/$1/$_f"
}
in_cgroup() {
	_cg=$1
	shift
	sh -c 'echo $$ >"/sys/fs/cgroup/memory/$0/cgroup.procs" && exec "$@"' "$_cg" "$@"
}

vmstat() { awk -v k="$1" '$1 == k { print $2 }' /proc/vmstat; }
mem_available_mb() { awk '$1 == "MemAvailable:" { print int($2 / 1024) }' /proc/meminfo; }

# No BUG/WARNING/Oops in the kernel log so far (the harness checks again at the end).
check_dmesg() {
	! dmesg | grep -E 'BUG:|WARNING:|Oops|blocked for more than|soft lockup' || fail "kernel trouble"
}

# detach_all: swapoff, detach, the resident spillctl exits, rmmod; nothing
# of the module is left.
detach_all() {
	grep -q "^$dev " /proc/swaps && swapoff "$dev"
	spillctl swap detach "$dev" || fail "detach"
	retry 200 sh -c "! kill -0 $attach_pid 2>/dev/null" || fail "spillctl did not exit after detach"
	wait "$attach_pid" || fail "spillctl exited with an error"
	[ ! -e "$dev" ] || fail "$dev still exists"
	rmmod spillway || fail "rmmod"
	! grep -q '^spillway ' /proc/modules || fail "module still loaded"
	! ps | grep -q '[s]pillway[0-9]' || fail "a receive thread is left"
	[ ! -e /dev/spillway-ctl ] || fail "control device left"
}

# Servers of a device with more than one (swap_replicas.sh, swap_repair.sh).
# srv_field SERVER NAME: a number from that server's `spillctl swap status`.
srv_field() { server_field "$1" "$2"; }
srv_conns_is() { [ "$(srv_field "$1" connections)" = "$2" ]; }
# kill_server SERVER PID: kill -9 that server; wait until the device sees it down.
kill_server() {
	kill -9 "$2"
	retry 200 srv_conns_is "$1" 0 || fail "server $1 still looks connected"
}

# --- fault scenarios (swap_faults.sh, swap_netem.sh) ----------------------

# counter NAME [DEV]: a device counter, from /sys/block/spillwayN/spillway/
# when the module has that file, else from `spillctl swap status --json`;
# empty if neither has it.
counter() {
	_cd=${2:-$dev}
	_cf=/sys/block/${_cd#/dev/}/spillway/$1
	if [ -r "$_cf" ]; then
		cat "$_cf"
	else
		spillctl swap status --json "$_cd" | sed -n "s/^{\"devices\":\[{[^[]*\"$1\":\([0-9]*\).*/\1/p"
	fi
}

# counter_above NAME N [DEV]: the counter exists and is more than N.
counter_above() {
	_cv=$(counter "$1" "${3:-}")
	[ -n "$_cv" ] && [ "$_cv" -gt "$2" ]
}

# server_field SERVER NAME [DEV]: a number from that server's status.
server_field() {
	spillctl swap status --json "${3:-$dev}" | tr '{' '\n' | grep "\"index\":$1,\"url\"" |
		sed -n "s/.*\"$2\":\([0-9]*\).*/\1/p"
}
server_conns_is() { [ "$(server_field "$1" connections "${3:-}")" = "$2" ]; }

# conn_failures_total [DEV]: connections closed on error, all servers.
conn_failures_total() {
	spillctl swap status --json "${1:-$dev}" | tr ',' '\n' |
		awk -F: '$1 == "\"connection_failures\"" { n += $2 } END { print n + 0 }'
}

# expect CASE WHAT CMD...: run CMD; if it fails, report WHAT for CASE and go
# on (expect_end fails the scenario), so one boot reports every case.
expect_failed=""
expect() {
	_ec=$1 _ew=$2
	shift 2
	"$@" || {
		echo "FAIL($_ec): $_ew"
		expect_failed="$expect_failed $_ec"
	}
}
expect_end() {
	[ -z "$expect_failed" ] || fail "cases that failed:$expect_failed"
}

# param_set NAME VALUE: write a module parameter; its write's status.
param_set() {
	sh -c "echo '$2' >/sys/module/spillway/parameters/$1" 2>/dev/null
}
param_is() { [ "$(cat "/sys/module/spillway/parameters/$1")" = "$2" ]; }
# param_refused NAME VALUE: the write fails and the value stays.
param_refused() {
	_old=$(cat "/sys/module/spillway/parameters/$1")
	! param_set "$1" "$2" && param_is "$1" "$_old"
}

# netem_loss [-n NS] DEV PCT: every packet leaving DEV is dropped with
# probability PCT % (netem_lib.sh style; netem_heal removes it).
netem_loss() {
	_netem_ns=""; [ "$1" != -n ] || { _netem_ns=$2; shift 2; }
	_netem_load && _netem_tc qdisc replace dev "$1" root netem loss "${2}%"
}

# start_server_ns NAME CAPACITY NETNS ADDR: start_server in network
# namespace NETNS, listening on ADDR.
start_server_ns() { start_server "$1" "$2" 0 "$3" "$4"; }
