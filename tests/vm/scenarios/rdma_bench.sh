# Benchmark (not pass/fail): the pager and the client library over rdma://
# against tcp:// on the same spillwayd, with perftest on the same rxe device
# as the limit, all in one boot. TCG makes absolute figures meaningless; the
# ratios printed at the end are the result (also in $SPILL_VM_OUT/bench.txt).
# Run with: cmake --build build --target bench-rdma (tests/vm/rdma.cmake).
# Needs: --rdma, spillwayd rdma_bench libspillway ib_read_lat ib_write_bw
# ibv_devinfo (--include).
set -eu
. /opt/spill/rdma_lib.sh
. /opt/spill/rdma_perftest.sh

out=${SPILL_VM_OUT:-/tmp}/bench.txt
: >"$out"
# Wire mode, as vm/rdma: clients on rxe1 (10.77.0.2), servers on rxe0, every
# packet across the veth pair, for perftest, rdma:// and tcp:// alike (see
# rdma_lib.sh), so the limit and the measurements share one path.
rdma_setup wire
ip=$RDMA_SERVER_IP
RDMA_PERFTEST_ITERS_4K=1000 rdma_perftest_limits >/tmp/perftest.txt
cat /tmp/perftest.txt

mkfifo /tmp/ready
spillwayd --listen "rdma://$ip:7471" --listen "tcp://$ip:0" --metrics none \
	--capacity 512M --insecure --ready-fd 3 3>/tmp/ready >/tmp/s.log 2>&1 &
read -r ready </tmp/ready
port=${ready#tcp=}
port=${port%% *}

for t in rdma tcp; do
	case $t in rdma) url=rdma://$ip:7471?source=$RDMA_CLIENT_IP ;; tcp) url=tcp://$ip:$port ;; esac
	echo "== over $url"
	rdma_bench "$url" >/tmp/bench.$t || { cat /tmp/bench.$t /tmp/s.log; exit 1; }
	sed "s/^bench /bench $t./" /tmp/bench.$t | tee -a /tmp/bench.raw
done

# value KEY: a number from perftest's or rdma_bench's lines.
value() { sed -n "s/^\(perftest\|bench\) $1=//p" /tmp/perftest.txt /tmp/bench.raw | head -1; }
# ratio LABEL A B: A / B to two places.
ratio() { awk -v l="$1" -v a="$2" -v b="$3" 'BEGIN { if (a > 0 && b > 0) printf "%-52s %8.2f\n", l, a / b; else printf "%-52s %8s\n", l, "NA" }'; }
# perftest's 2 MiB read latency as MB/s (2^20 bytes per second).
read_2m_limit=$(awk -v us="$(value read_lat_2m_us)" 'BEGIN { if (us > 0) printf "%.1f", 2e6 / us }')
{
	echo "ratios (TCG: only these mean anything)"
	ratio "4 KiB sync read: tcp time / rdma time" "$(value tcp.op_read_4k_us)" "$(value rdma.op_read_4k_us)"
	ratio "4 KiB sync read over rdma / ib_read_lat 4 KiB" "$(value rdma.op_read_4k_us)" "$(value read_lat_4k_us)"
	ratio "2 MiB sync read: rdma MB/s / tcp MB/s" "$(value rdma.op_read_2m_MBps)" "$(value tcp.op_read_2m_MBps)"
	ratio "2 MiB sync read over rdma / ib_read_lat 2 MiB (MB/s)" "$(value rdma.op_read_2m_MBps)" "$read_2m_limit"
	ratio "2 MiB sync write: rdma MB/s / tcp MB/s" "$(value rdma.op_write_2m_MBps)" "$(value tcp.op_write_2m_MBps)"
	ratio "2 MiB sync write over rdma / ib_write_bw 2 MiB" "$(value rdma.op_write_2m_MBps)" "$(value write_bw_2m_MBps)"
	ratio "pager fault: tcp time / rdma time" "$(value tcp.pager_fault_us)" "$(value rdma.pager_fault_us)"
	ratio "pager fault over rdma / ib_read_lat 4 KiB" "$(value rdma.pager_fault_us)" "$(value read_lat_4k_us)"
	ratio "pager 4 threads mixed: rdma ops/s / tcp ops/s" "$(value rdma.pager_mixed_ops)" "$(value tcp.pager_mixed_ops)"
} | tee -a "$out"
cat /tmp/perftest.txt /tmp/bench.raw >>"$out"
kill %1 2>/dev/null || true
