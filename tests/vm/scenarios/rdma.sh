# spillwayd over soft-RoCE (rdma://), in one boot:
#  1. the clear errors first, before any RDMA device exists: spillwayd and
#     spillctl name the missing device; a client with ?fallback=tcp:// gets
#     through over TCP instead;
#  2. with rxe0/rxe1 on a veth pair (rdma_lib.sh, wire mode: the clients
#     connect from rxe1 with ?source=, so packets cross the pair): spillwayd listens on
#     rdma:// and tcp:// at once; spillctl works over both;
#  3. the pager over rdma:// with random reads and writes from 4 threads,
#     every byte verified, and the pages moved one-sided (the server saw
#     no WRITE frame from it);
#  4. isolation: another identity's one-sided read with a stolen key fails
#     with a remote access error; the server carries on (step 5 runs on it);
#     a token is not a key: on a server with a PSK, connections presenting
#     the victim's token READ and WRITE its page with its key before Hello,
#     and another identity (with the PSK) READs it: all fail, the page is
#     unchanged, the server carries on;
#  5. two servers, replicas 2: kill -9 one mid-run, every byte verifies;
#  6. RLIMIT_MEMLOCK too low (no CAP_IPC_LOCK): the clear error, no crash.
# Needs: --rdma, spillwayd spillctl rdma_check libspillway (--include).
set -eu
. /opt/spill/rdma_lib.sh

say() { echo "== $*"; }
fail() { echo "rdma: FAIL: $*"; for f in /tmp/*.log; do echo "--- $f"; tail -20 "$f"; done; exit 1; }

# start_server NAME LISTEN...: spillwayd in the background; sets NAME_pid,
# NAME_tcp (its tcp:// URL) from the ready line. $server_auth: its
# authentication flags.
server_auth=--insecure
start_server() {
	_name=$1
	shift
	rm -f "/tmp/$_name.ready"
	mkfifo "/tmp/$_name.ready"
	_args="" _host=127.0.0.1
	for l in "$@"; do
		_args="$_args --listen $l"
		case $l in tcp://*) _host=${l#tcp://} _host=${_host%:*} ;; esac
	done
	# shellcheck disable=SC2086
	spillwayd $_args --metrics none --capacity 256M $server_auth --ready-fd 3 \
		3>"/tmp/$_name.ready" >>"/tmp/$_name.log" 2>&1 &
	_pid=$!
	read -r _ready <"/tmp/$_name.ready" || fail "spillwayd $_name did not start"
	_port=${_ready#tcp=}
	_port=${_port%% *}
	eval "${_name}_pid=$_pid ${_name}_tcp=tcp://$_host:$_port"
}

# expect_error WANT CMD...: CMD fails, and its output says WANT.
expect_error() {
	_want=$1
	shift
	if "$@" >/tmp/out 2>&1; then cat /tmp/out; fail "$* succeeded"; fi
	cat /tmp/out
	grep -q "$_want" /tmp/out || fail "$* did not say: $_want"
}

say "1. no RDMA device yet"
modprobe rdma_rxe
modprobe rdma_ucm
expect_error "no RDMA device" spillwayd --listen rdma://127.0.0.1:7471 --metrics none --capacity 16M
start_server s0 tcp://127.0.0.1:0
expect_error "no RDMA device" spillctl --server rdma://127.0.0.1:7471 status
spillctl --server "rdma://127.0.0.1:7471?fallback=$s0_tcp" status >/tmp/out ||
	{ cat /tmp/out; fail "the TCP fallback did not connect"; }
grep -q "capacity" /tmp/out || fail "status over the fallback printed nothing"
kill "$s0_pid"
wait "$s0_pid" || true

say "2. soft-RoCE; spillwayd on rdma:// and tcp:// at once"
# Wire mode: clients connect from rxe1 (source=10.77.0.2) to spillwayd on
# rxe0, so every packet crosses the veth pair (checked at the end).
rdma_setup wire
ip=$RDMA_SERVER_IP
src=$RDMA_CLIENT_IP
start_server s1 "rdma://$ip:7471" "tcp://$ip:0"
grep "listening on rdma://" /tmp/s1.log
grep -q "active MTU $RDMA_ACTIVE_MTU" /tmp/s1.log || fail "the listener did not report the port's active MTU"
spillctl --server "rdma://$ip:7471?source=$src" status >/tmp/out || { cat /tmp/out; fail "spillctl over rdma://"; }
spillctl --server "$s1_tcp" status >/dev/null || fail "spillctl over tcp:// beside rdma://"

say "3. the pager over rdma://: 4 threads, random reads and writes"
rdma_check pager 16 4 1 -- "rdma://$ip:7471?source=$src" || fail "pager over rdma://"
spillctl --server "rdma://$ip:7471?source=$src" --json clients >/tmp/clients
written=$(tr '{' '\n' </tmp/clients | grep '"name":"rdma-pager-r1"' |
	sed -n 's/.*"pages_written":\([0-9]*\).*/\1/p')
echo "server-side WRITE frames from the pager: ${written:-none}"
[ "${written:-1}" = 0 ] || fail "the pager's pages went through the server CPU, not one-sided"

say "4. isolation: a stolen remote key"
rdma_check isolation "rdma://$ip:7471?source=$src" || fail "isolation"
spillctl --server "rdma://$ip:7471?source=$src" status >/dev/null || fail "the server did not carry on"
say "4b. a token is not a key (a server with a PSK)"
echo "spillway-vm-rdma-preauth-key" >/tmp/psk
chmod 600 /tmp/psk
server_auth="--psk-file /tmp/psk"
start_server s3 "rdma://$ip:7474" "tcp://$ip:0"
server_auth=--insecure
rdma_check preauth "rdma://$ip:7474?source=$src" /tmp/psk || fail "a token opened the victim's memory"
spillctl --server "rdma://$ip:7474?source=$src" --psk-file /tmp/psk status >/dev/null ||
	fail "the server with a key did not carry on"
kill "$s3_pid"
wait "$s3_pid" || true

say "5. two servers, replicas 2, kill -9 one mid-run"
start_server s2 "rdma://$ip:7472" "tcp://$ip:0"
rdma_check pager 16 4 2 "$s2_pid" -- "rdma://$ip:7471?source=$src" "rdma://$ip:7472?source=$src" ||
	fail "replicas over rdma:// after a server died"
wait "$s2_pid" 2>/dev/null || true

say "6. RLIMIT_MEMLOCK too low"
expect_error "RLIMIT_MEMLOCK" rdma_check nolock spillwayd --listen "rdma://$ip:7473" \
	--metrics none --capacity 64M --insecure
expect_error "RLIMIT_MEMLOCK" rdma_check nolock spillctl --server "rdma://$ip:7471?source=$src" status
kill "$s1_pid"
wait "$s1_pid" || true
if grep -E "AddressSanitizer|runtime error|Segmentation" /tmp/*.log; then fail "a process crashed"; fi
# The pages crossed the veth pair: rxe1 (the clients' side) sent and received.
for d in rxe0 rxe1; do
	c=/sys/class/infiniband/$d/ports/1/hw_counters
	echo "$d: sent_pkts $(cat $c/sent_pkts) rcvd_pkts $(cat $c/rcvd_pkts)"
done
[ "$(cat /sys/class/infiniband/rxe1/ports/1/hw_counters/sent_pkts)" -gt 10000 ] ||
	fail "the clients' traffic did not leave through rxe1"
echo "rdma: ok"
