# perftest's limits on the guest's soft-RoCE pair, machine-readable, for
# benchmarks that compare the pager over rdma:// and tcp:// against them.
#
# As a scenario:  tests/vm/run --rdma --include /usr/bin/ib_read_lat \
#                     --include /usr/bin/ib_write_bw --include /usr/bin/ibv_devinfo rdma_perftest
# From another:   . /opt/spill/rdma_lib.sh; . /opt/spill/rdma_perftest.sh
#                 rdma_setup; rdma_perftest_limits
#
# rdma_perftest_limits prints (and appends to $SPILL_VM_OUT/perftest.txt):
#   perftest read_lat_4k_us=N    ib_read_lat t_typical, 4096-byte messages
#   perftest read_lat_2m_us=N    ib_read_lat t_typical, 2 MiB messages
#   perftest write_bw_4k_MBps=N  ib_write_bw BW average, 4096-byte messages
#   perftest write_bw_2m_MBps=N  ib_write_bw BW average, 2 MiB messages
#   perftest active_mtu=N
# MBps is perftest's MB/s: 2^20 bytes per second. Server on rxe0
# (10.77.0.1), client on rxe1, rdma_cm, over the veth pair (rdma_setup
# wire). Iteration counts suit TCG (about 20 s in all); RDMA_PERFTEST_ITERS_4K
# and RDMA_PERFTEST_ITERS_2M change them. Status non-zero if a run failed
# or printed no result.

command -v rdma_setup >/dev/null 2>&1 || . /opt/spill/rdma_lib.sh

rdma_perftest_limits() {
	_i4=${RDMA_PERFTEST_ITERS_4K:-200}
	_i2=${RDMA_PERFTEST_ITERS_2M:-10}
	_out=${SPILL_VM_OUT:-/tmp}/perftest.txt
	_bad=0
	# name tool size iters column-of-the-result
	for _run in "read_lat_4k_us ib_read_lat 4096 $_i4 5" \
		"read_lat_2m_us ib_read_lat 2097152 $_i2 5" \
		"write_bw_4k_MBps ib_write_bw 4096 $_i4 4" \
		"write_bw_2m_MBps ib_write_bw 2097152 $_i2 4"; do
		# shellcheck disable=SC2086 # split on purpose
		set -- $_run
		if rdma_perftest_pair "limits_$1" "$2" -s "$3" -n "$4"; then
			_v=$(rdma_perftest_result "$RDMA_LOGDIR/limits_$1.client" "$3" "$5")
		else
			_v=""
		fi
		if [ -z "$_v" ]; then
			echo "rdma_perftest_limits: no result for $1" >&2
			_bad=1
			_v=NA
		fi
		echo "perftest $1=$_v" | tee -a "$_out"
	done
	echo "perftest active_mtu=${RDMA_ACTIVE_MTU:-NA}" | tee -a "$_out"
	return "$_bad"
}

if [ "${SPILL_VM_NAME:-}" = rdma_perftest ]; then
	set -eu
	rdma_setup
	rdma_perftest_limits
fi
