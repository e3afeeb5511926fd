# VM scenarios over soft-RoCE (included at the end of tests/vm/vm.cmake): the
# guest's rdma_rxe on a veth pair (tests/vm/scenarios/rdma_lib.sh), exercised
# by perftest over rdma_cm. Needs perftest and ibverbs-utils on the host
# (deploy/install-deps) for the programs, and tests/vm/run --rdma for the rxe
# provider (ibverbs-providers) and rdma(8) (iproute2).
if(SPILL_VM_TESTS)
  find_program(SPILL_IB_READ_LAT ib_read_lat)
  find_program(SPILL_IB_WRITE_BW ib_write_bw)
  find_program(SPILL_IBV_DEVINFO ibv_devinfo)
  find_program(SPILL_RDMA_TOOL rdma PATHS /usr/sbin /sbin)
  if(NOT SPILL_IB_READ_LAT OR NOT SPILL_IB_WRITE_BW OR NOT SPILL_IBV_DEVINFO)
    message(STATUS "VM test rdma-smoke: off (perftest or ibverbs-utils missing; deploy/install-deps)")
  elseif(NOT SPILL_RDMA_TOOL OR NOT EXISTS /etc/libibverbs.d/rxe.driver)
    message(STATUS "VM test rdma-smoke: off (rdma tool or rxe provider missing: iproute2, ibverbs-providers)")
  else()
    spill_vm_test(NAME rdma-smoke SCENARIO rdma_smoke RDMA TIMEOUT 120
                  INCLUDE ${SPILL_IB_READ_LAT} ${SPILL_IB_WRITE_BW} ${SPILL_IBV_DEVINFO})
  endif()
endif()

# vm/rdma: spillwayd, spillctl and the pager over rdma:// (scenarios/rdma.sh),
# with rdma_check as the client.
if(SPILL_VM_TESTS)
  add_executable(rdma_check ${SPILL_VM_DIR}/rdma_check.c)
  target_link_libraries(rdma_check PRIVATE spillway_core spillway)
  if(NOT EXISTS /etc/libibverbs.d/rxe.driver)
    message(STATUS "VM test rdma: off (rxe provider missing: ibverbs-providers)")
  else()
    spill_vm_test(NAME rdma SCENARIO rdma RDMA MEM 1G TIMEOUT 600
                  INCLUDE $<TARGET_FILE:spillwayd> $<TARGET_FILE:spillctl>
                          $<TARGET_FILE:rdma_check> $<TARGET_FILE:spillway>
                  DEPENDS spillwayd spillctl rdma_check spillway)
  endif()
endif()

# Benchmark, not a test: `cmake --build build --target bench-rdma` boots one
# guest and prints the pager and client library over rdma:// against tcp://,
# with perftest as the limit (scenarios/rdma_bench.sh; figures in docs/rdma.md).
if(SPILL_VM_TESTS)
  add_executable(rdma_bench ${SPILL_VM_DIR}/rdma_bench.c)
  target_link_libraries(rdma_bench PRIVATE spillway_core spillway)
  if(SPILL_IB_READ_LAT AND SPILL_IB_WRITE_BW AND SPILL_IBV_DEVINFO)
    add_custom_target(bench-rdma
      COMMAND ${SPILL_VM_DIR}/run --rdma --mem 1G --out ${CMAKE_BINARY_DIR}/bench-rdma
              --include $<TARGET_FILE:spillwayd> --include $<TARGET_FILE:rdma_bench>
              --include $<TARGET_FILE:spillway> --include ${SPILL_IB_READ_LAT}
              --include ${SPILL_IB_WRITE_BW} --include ${SPILL_IBV_DEVINFO} rdma_bench
      DEPENDS spillwayd rdma_bench spillway
      USES_TERMINAL)
  endif()
endif()
