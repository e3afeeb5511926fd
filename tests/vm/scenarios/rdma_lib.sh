# Soft-RoCE (rdma_rxe) in a tests/vm/run guest, for the rdma_* scenarios.
# tests/vm/run --rdma puts this file in /opt/spill (with the rxe verbs
# provider, its /etc/libibverbs.d entry, rdma(8) and the modules); scenarios
# source it:  . /opt/spill/rdma_lib.sh && rdma_setup
#
#   rdma_setup [wire|loopback]
#       veth0 10.77.0.1/24 <-> veth1 10.77.0.2/24, both in the root network
#       namespace, MTU 1500; rxe0 on veth0, rxe1 on veth1; waits (bounded)
#       until both ports are ACTIVE and prints one line per device. Sets
#       RDMA_SERVER_IP=10.77.0.1 (serve here, on rxe0), RDMA_CLIENT_IP=10.77.0.2
#       (rxe1), RDMA_ACTIVE_MTU (1024 here).
#   rdma_cm_listening PORT     true once an rdma_cm id listens on PORT
#   rdma_perftest_pair NAME TOOL ARGS...
#       perftest TOOL (ib_read_lat, ib_write_bw, ...) with rdma_cm (-R):
#       server on rxe0, client on rxe1 connecting to RDMA_SERVER_IP; output in
#       $RDMA_LOGDIR/NAME.server and NAME.client; status 0 iff both exit 0.
#
# What works on the guest's 6.1 kernel (measured, see docs/rdma.md):
#
# - One network namespace only. 6.1's rxe opens its UDP 4791 socket in the
#   initial namespace alone: with veth1 moved to another namespace (rxe1
#   re-created there; moving the netdev unregisters the rxe device on it),
#   rdma_cm in that namespace fails ("Unable to init the socket connection")
#   and a QP connected out of band never completes a packet.
# - In one namespace, 10.77.0.1 is a local address, so by default the kernel
#   routes 10.77.0.2 -> 10.77.0.1 through lo and rdma_cm binds BOTH ends to
#   rxe0 (the device owning the destination), whatever -d or --source_ip the
#   client asks for: rxe then hands packets from QP to QP in memory
#   (rxe_loopback) and veth carries nothing. That is `rdma_setup loopback`.
# - `rdma_setup wire` (the default) makes traffic between the two addresses
#   leave through the other end of the pair: the `local` routing rule moves
#   from priority 0 to 1000 and, ahead of it, locally sent packets to
#   10.77.0.1 use a table routing them out veth1 (source 10.77.0.2), those to
#   10.77.0.2 out veth0; accept_local=1 and rp_filter=0 let veth0/veth1 accept
#   packets whose source is one of our own addresses; each end has a
#   permanent neighbour entry for the other. A client that names its source
#   (perftest -d rxe1, spillway's rdma://...?source=10.77.0.2) is then bound
#   to rxe1 (its GID is ::ffff:10.77.0.2) and both devices' sent_pkts
#   and rcvd_pkts count the traffic. TCP between the two addresses takes the
#   same path, so a tcp:// baseline crosses the same veth.
# - net.core.netdev_max_backlog goes from 1000 to 16384: veth delivers
#   through the per-CPU backlog, and one 2 MiB RDMA READ is a burst of 2048
#   response packets (active_mtu 1024); with 1000 the tail is dropped, rxe
#   retransmits the whole read and loses it again forever ("rdma_rxe: Failed
#   sending ACK" every ~2.3 s, ib_read_lat -s 2097152 never finishes).
# - Ports are ACTIVE as soon as `rdma link add` returns; active_mtu is 1024
#   on a 1500-byte netdev (max_mtu 4096): rxe takes the largest IB MTU that
#   fits in the netdev MTU minus 80 bytes of headers; measured: netdev MTU
#   2127 -> 1024, 2128 -> 2048, 4175 -> 2048, 4176 -> 4096 (MTU set before
#   `rdma link add`).
# - "rdma link add" needs crc32_generic (rxe's ICRC); without it it fails
#   with ENOENT and dmesg says "failed to init crc32 algorithm err:-2".
# - busybox applets win over PATH inside `timeout` and other busybox
#   wrappers: call iproute2 as /opt/spill/ip there.

RDMA_SERVER_IP=10.77.0.1
RDMA_CLIENT_IP=10.77.0.2
RDMA_ACTIVE_MTU=
RDMA_LOGDIR=${RDMA_LOGDIR:-/tmp/rdma}
# Per-run time limit of one perftest process (seconds).
RDMA_PERFTEST_TIMEOUT=${RDMA_PERFTEST_TIMEOUT:-60}

# rdma_port_active DEV: port 1 of DEV is ACTIVE.
rdma_port_active() {
	grep -q ACTIVE "/sys/class/infiniband/$1/ports/1/state" 2>/dev/null
}

rdma_setup() {
	_mode=${1:-wire}
	case "$_mode" in wire | loopback) ;; *) echo "rdma_setup: wire or loopback, not $_mode" >&2; return 2 ;; esac
	command -v rdma >/dev/null || { echo "rdma_setup: no rdma tool: run tests/vm/run with --rdma" >&2; return 2; }
	for _m in crc32_generic veth rdma_rxe ib_uverbs rdma_ucm rdma_cm; do
		modprobe "$_m" || { echo "rdma_setup: modprobe $_m failed (tests/vm/run --rdma?)" >&2; return 1; }
	done
	mkdir -p "$RDMA_LOGDIR"
	echo 16384 >/proc/sys/net/core/netdev_max_backlog
	ip link add veth0 type veth peer name veth1 || return 1
	ip addr add "$RDMA_SERVER_IP/24" dev veth0
	ip addr add "$RDMA_CLIENT_IP/24" dev veth1
	ip link set veth0 up
	ip link set veth1 up
	if [ "$_mode" = wire ]; then
		for _i in all veth0 veth1; do
			echo 1 >"/proc/sys/net/ipv4/conf/$_i/accept_local"
			echo 0 >"/proc/sys/net/ipv4/conf/$_i/rp_filter"
		done
		ip rule add pref 1000 lookup local &&
			ip rule del pref 0 &&
			ip rule add pref 100 to "$RDMA_SERVER_IP" iif lo lookup 101 &&
			ip rule add pref 101 to "$RDMA_CLIENT_IP" iif lo lookup 102 &&
			ip route add "$RDMA_SERVER_IP" dev veth1 src "$RDMA_CLIENT_IP" table 101 &&
			ip route add "$RDMA_CLIENT_IP" dev veth0 src "$RDMA_SERVER_IP" table 102 ||
			{ echo "rdma_setup: policy routing failed (iproute2's ip missing?)" >&2; return 1; }
		# Each end's neighbour entry for the other, up front: rdma_cm's
		# address resolution waits on ARP between two local addresses,
		# which did not complete here, and spillctl's first connect from
		# 10.77.0.2 timed out.
		ip neigh replace "$RDMA_SERVER_IP" lladdr "$(cat /sys/class/net/veth0/address)" \
			dev veth1 nud permanent &&
			ip neigh replace "$RDMA_CLIENT_IP" lladdr "$(cat /sys/class/net/veth1/address)" \
				dev veth0 nud permanent ||
			{ echo "rdma_setup: static neighbours failed" >&2; return 1; }
	fi
	rdma link add rxe0 type rxe netdev veth0 || { echo "rdma_setup: rdma link add rxe0 failed (dmesg)" >&2; return 1; }
	rdma link add rxe1 type rxe netdev veth1 || { echo "rdma_setup: rdma link add rxe1 failed (dmesg)" >&2; return 1; }
	for _d in rxe0 rxe1; do
		# 200 x 50 ms: in practice ACTIVE at the first look.
		retry 200 rdma_port_active "$_d" || {
			echo "rdma_setup: $_d port not ACTIVE after 10 s:" >&2
			rdma link >&2
			return 1
		}
	done
	for _d in rxe0 rxe1; do
		_mtu=""
		if command -v ibv_devinfo >/dev/null; then
			_mtu=$(ibv_devinfo -d "$_d" | awk '$1 == "active_mtu:" { print $2; exit }')
		fi
		[ -n "$RDMA_ACTIVE_MTU" ] || RDMA_ACTIVE_MTU=$_mtu
		echo "rdma: $_d $(rdma link show "$_d/1" | sed 's/^link [^ ]* //; s/ *$//') active_mtu ${_mtu:-?} mode $_mode"
	done
}

# rdma_cm_listening PORT
rdma_cm_listening() {
	rdma resource show cm_id 2>/dev/null | grep LISTEN | grep -q "[:.]$1 "
}

# rdma_perftest_pair NAME TOOL ARGS...: see the top of the file. The client
# starts once the server's rdma_cm id listens (bounded poll); each side has
# RDMA_PERFTEST_TIMEOUT seconds. ARGS must not contain -p (a port per run
# is picked here, so a run never meets the previous one's listener).
rdma_perftest_seq=0
rdma_perftest_pair() {
	_name=$1 _tool=$2
	shift 2
	rdma_perftest_seq=$((rdma_perftest_seq + 1))
	_port=$((18515 + rdma_perftest_seq))
	_log=$RDMA_LOGDIR/$_name
	mkdir -p "$RDMA_LOGDIR"
	timeout "$RDMA_PERFTEST_TIMEOUT" "$_tool" -d rxe0 -R -F -p "$_port" "$@" >"$_log.server" 2>&1 &
	_spid=$!
	if ! retry 400 rdma_cm_listening "$_port"; then
		echo "rdma_perftest_pair: $_name: server never listened on $_port:" >&2
		cat "$_log.server" >&2
		kill "$_spid" 2>/dev/null
		wait "$_spid"
		return 1
	fi
	_crc=0
	timeout "$RDMA_PERFTEST_TIMEOUT" "$_tool" -d rxe1 -R -F -p "$_port" "$@" "$RDMA_SERVER_IP" \
		>"$_log.client" 2>&1 || _crc=$?
	_src=0
	wait "$_spid" || _src=$?
	if [ "$_crc" -ne 0 ] || [ "$_src" -ne 0 ]; then
		echo "rdma_perftest_pair: $_name: client status $_crc, server status $_src" >&2
		tail -n 15 "$_log.server" "$_log.client" >&2
		return 1
	fi
}

# rdma_perftest_result FILE SIZE COLUMN: COLUMN of perftest's result row for
# SIZE (the row whose first field is SIZE, after the "#bytes" header).
rdma_perftest_result() {
	awk -v size="$2" -v col="$3" '
		$1 == "#bytes" { hdr = 1; next }
		hdr && $1 == size { print $col; exit }' "$1"
}
