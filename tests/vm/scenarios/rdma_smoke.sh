# Soft-RoCE in the guest: rxe0/rxe1 on a veth pair (rdma_lib.sh), then
# perftest over rdma_cm between them: ib_read_lat and ib_write_bw, server on
# rxe0 (10.77.0.1), client on rxe1, both must exit 0 and report a result;
# the traffic must have crossed the pair (both devices' packet counters).
# Run: tests/vm/run --rdma --include /usr/bin/ib_read_lat \
#          --include /usr/bin/ib_write_bw --include /usr/bin/ibv_devinfo rdma_smoke
set -eu

for t in ib_read_lat ib_write_bw; do
	command -v "$t" >/dev/null || { echo "rdma_smoke: run with --rdma --include /usr/bin/$t"; exit 2; }
done
[ -r /opt/spill/rdma_lib.sh ] || { echo "rdma_smoke: run with --rdma"; exit 2; }
. /opt/spill/rdma_lib.sh

echo "== setup"
rdma_setup
rdma link
[ -z "$RDMA_ACTIVE_MTU" ] || [ "$RDMA_ACTIVE_MTU" -ge 1024 ] ||
	{ echo "active_mtu $RDMA_ACTIVE_MTU below 1024"; exit 1; }

pkts() { cat "/sys/class/infiniband/$1/ports/1/hw_counters/$2"; }

echo "== ib_read_lat 4096 B x 100"
rdma_perftest_pair read_lat ib_read_lat -s 4096 -n 100
v=$(rdma_perftest_result "$RDMA_LOGDIR/read_lat.client" 4096 5)
[ -n "$v" ] || { echo "no result line"; cat "$RDMA_LOGDIR/read_lat.client"; exit 1; }
echo "rdma_smoke read_lat_4k_us=$v"

echo "== ib_write_bw 65536 B x 100"
rdma_perftest_pair write_bw ib_write_bw -s 65536 -n 100
v=$(rdma_perftest_result "$RDMA_LOGDIR/write_bw.client" 65536 4)
[ -n "$v" ] || { echo "no result line"; cat "$RDMA_LOGDIR/write_bw.client"; exit 1; }
echo "rdma_smoke write_bw_64k_MBps=$v"

echo "== counters"
for d in rxe0 rxe1; do
	s=$(pkts "$d" sent_pkts) r=$(pkts "$d" rcvd_pkts)
	echo "rdma_smoke $d sent_pkts=$s rcvd_pkts=$r"
	# rxe1 sends at least the read requests and write data, rxe0 the rest.
	[ "$s" -gt 100 ] && [ "$r" -gt 100 ] || { echo "$d carried no traffic: loopback, not the veth pair?"; exit 1; }
done
cp "$RDMA_LOGDIR"/* "$SPILL_VM_OUT/"
echo "rdma_smoke: ok"
