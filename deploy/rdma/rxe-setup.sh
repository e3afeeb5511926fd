#!/bin/sh
# shellcheck disable=SC3045 # dash (the image's sh) and busybox sh have ulimit -l
# Container entrypoint: make sure an RDMA device sits on the container's
# network interface, then exec the command. With a real RoCE/IB device
# passed in, or an rxe link already on the interface, it only checks.
#
#   rxe-setup [COMMAND [ARG]...]     env: RXE_NETDEV (default eth0),
#                                         RXE_NAME (default rxe0)
#
# Needs NET_ADMIN (rdma link add), /dev/infiniband from the host, and on the
# host the rdma_rxe module (containers cannot load modules).
set -eu

netdev=${RXE_NETDEV:-eth0}
name=${RXE_NAME:-rxe0}

die() { echo "rxe-setup: $*" >&2; exit 1; }

command -v rdma >/dev/null || die "no rdma tool (iproute2) in the image"
[ -d /sys/class/net/"$netdev" ] || die "no network interface $netdev (set RXE_NETDEV)"
[ -e /dev/infiniband/uverbs0 ] || [ -e /dev/infiniband/rdma_cm ] ||
	echo "rxe-setup: /dev/infiniband missing or empty: pass it in (devices: /dev/infiniband)" >&2

# The device on $netdev: an rxe link made earlier (this container restarted),
# or a hardware RoCE port on it.
dev_on_netdev() {
	rdma link show 2>/dev/null | awk -v nd="$netdev" '
		{ for (i = 1; i < NF; i++) if ($i == "netdev" && $(i + 1) == nd) { split($2, a, "/"); print a[1]; exit } }'
}

dev=$(dev_on_netdev)
if [ -z "$dev" ]; then
	if [ ! -d /sys/module/rdma_rxe ]; then
		die "rdma_rxe is not loaded and no RDMA device is on $netdev: modprobe rdma_rxe on the host"
	fi
	# Soft-RoCE device names are global (RDMA netns mode "shared"): make it unique.
	rdma dev show "$name" >/dev/null 2>&1 && name=rxe_$(hostname | tr -c 'A-Za-z0-9_\n' _)
	rdma link add "$name" type rxe netdev "$netdev" ||
		die "rdma link add $name type rxe netdev $netdev failed (NET_ADMIN? dmesg on the host)"
	dev=$name
fi

# Bounded wait for the port: rxe ports are ACTIVE at once when the netdev is up.
state=""
i=0
while [ $i -lt 100 ]; do
	state=$(cat /sys/class/infiniband/"$dev"/ports/1/state 2>/dev/null || true)
	case "$state" in *ACTIVE*) break ;; esac
	i=$((i + 1))
	sleep 0.1
done
case "$state" in
	*ACTIVE*) ;;
	*) die "$dev port 1 is '${state:-absent}', not ACTIVE (is $netdev up? ip link show $netdev)" ;;
esac

mtu=""
command -v ibv_devinfo >/dev/null && mtu=$(ibv_devinfo -d "$dev" 2>/dev/null | awk '$1 == "active_mtu:" { print $2; exit }')
echo "rxe-setup: $dev on $netdev ACTIVE, active_mtu ${mtu:-unknown}, memlock $(ulimit -l)" >&2
[ "$(ulimit -l)" = unlimited ] ||
	echo "rxe-setup: memlock limit $(ulimit -l) KiB: registering large buffers will fail (ulimits: memlock: -1)" >&2

[ $# -gt 0 ] || exit 0
exec "$@"
