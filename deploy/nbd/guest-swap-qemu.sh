#!/usr/bin/env bash
# Give a QEMU guest a swap disk in far memory, through spillwayd's NBD export.
# Run on the hypervisor host, next to a spillwayd started with --nbd
# (loopback; see docs/nbd.md, Security). Then, in the guest:
#   mkswap /dev/vdb && swapon --discard /dev/vdb
#
#   deploy/nbd/guest-swap-qemu.sh NAME SIZE -- QEMU-ARGS...
# e.g. deploy/nbd/guest-swap-qemu.sh vm1-swap 4G -- -m 2G -drive file=vm1.qcow2,if=virtio
set -euo pipefail
name=${1:?export name}
size=${2:?size, e.g. 4G}
shift 2
[ "${1:-}" = "--" ] && shift
nbd=${SPILLWAY_NBD:-127.0.0.1:10809}
spillctl=${SPILLCTL:-spillctl}

# An export is memory in the running server: make it if it is not there.
if ! "$spillctl" export list --json | grep -q "\"name\":\"$name\""; then
	"$spillctl" export create "$name" --size "$size"
fi
# discard=unmap: pages the guest frees are trimmed and given back to the pool.
exec qemu-system-x86_64 "$@" \
	-drive "file=nbd://$nbd/$name,format=raw,if=virtio,cache=none,discard=unmap"
