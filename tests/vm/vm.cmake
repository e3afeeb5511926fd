# VM scenarios (tests/vm): each boots Debian's 6.1 kernel (or, with KERNEL
# 6.12, its 6.12 backport) under qemu with tests/vm/run. Included from the
# top-level CMakeLists.txt.
#
#   spill_vm_test(NAME <name> SCENARIO <name-or-path> [KERNEL <6.1|6.12>]
#                 [MEM <size>] [NUMA <n>] [DISK <size>] [TIMEOUT <seconds>] [RDMA]
#                 [INCLUDE <paths or generator expressions>...]
#                 [MODULES <kernel modules>...] [ENV <NAME=VALUE>...]
#                 [ARGS <scenario arguments>...] [DEPENDS <targets>...])
#
# registers the ctest `vm/<name>` (label vm). TIMEOUT is the scenario's time
# limit in the guest (default 600 s); ctest's own is 150 s more, for boot and
# the host-side deadline. RDMA passes --rdma (soft-RoCE userspace and
# tests/vm/scenarios/rdma_lib.sh in the guest). DEPENDS targets are added to
# `all`, so a plain build makes everything the guest needs. Logs go to
# <build>/vm-logs/<name>/.
#
# VM tests exist only in the plain build (not with SPILL_SANITIZE or
# SPILL_FUZZ) and only when qemu, cpio and a static busybox are installed and
# the 6.1 guest kernel is cached or can be fetched (as root); tests/run sees
# to both. SPILL_VM_TESTS tells callers whether they are on. Without it,
# spill_vm_test() does nothing, so callers need not check. (kmod/kmod.cmake
# registers the spillway.ko scenarios on both kernels.)

set(SPILL_VM_DIR ${CMAKE_CURRENT_LIST_DIR})
set(SPILL_VM_TESTS OFF)
set(_spill_vm_why "")

if(NOT SPILL_TESTS)
  set(_spill_vm_why "SPILL_TESTS is off")
elseif(SPILL_SANITIZE OR SPILL_FUZZ)
  set(_spill_vm_why "sanitizer and fuzz builds leave them to the plain build")
else()
  find_program(SPILL_QEMU qemu-system-x86_64)
  find_program(SPILL_CPIO cpio)
  if(NOT SPILL_QEMU OR NOT SPILL_CPIO OR NOT EXISTS /bin/busybox)
    set(_spill_vm_why "qemu-system-x86_64, cpio or /bin/busybox missing (deploy/install-deps)")
  else()
    execute_process(COMMAND ${SPILL_VM_DIR}/fetch-kernel --cached --kernel 6.1
                    OUTPUT_VARIABLE _spill_vm_kernel OUTPUT_STRIP_TRAILING_WHITESPACE
                    RESULT_VARIABLE _spill_vm_cached ERROR_QUIET)
    execute_process(COMMAND id -u OUTPUT_VARIABLE _spill_vm_uid
                    OUTPUT_STRIP_TRAILING_WHITESPACE)
    find_program(SPILL_APT_GET apt-get)
    if(_spill_vm_cached EQUAL 0)
      set(SPILL_VM_TESTS ON)
      message(STATUS "VM tests: on, guest kernel ${_spill_vm_kernel}")
    elseif(_spill_vm_uid STREQUAL "0" AND SPILL_APT_GET)
      # tests/vm/run fetches it on first use.
      set(SPILL_VM_TESTS ON)
      message(STATUS "VM tests: on, guest kernel fetched on first run (tests/vm/fetch-kernel)")
    else()
      set(_spill_vm_why "no cached guest kernel and not root to fetch one (tests/vm/fetch-kernel)")
    endif()
  endif()
endif()
if(NOT SPILL_VM_TESTS)
  message(STATUS "VM tests: off (${_spill_vm_why})")
endif()

function(spill_vm_test)
  if(NOT SPILL_VM_TESTS)
    return()
  endif()
  cmake_parse_arguments(VM "RDMA" "NAME;SCENARIO;KERNEL;MEM;NUMA;DISK;TIMEOUT"
                        "INCLUDE;MODULES;ENV;ARGS;DEPENDS" ${ARGN})
  if(NOT VM_NAME OR NOT VM_SCENARIO)
    message(FATAL_ERROR "spill_vm_test needs NAME and SCENARIO")
  endif()
  if(NOT VM_TIMEOUT)
    set(VM_TIMEOUT 600)
  endif()
  set(cmd ${SPILL_VM_DIR}/run --timeout ${VM_TIMEOUT}
          --logs ${CMAKE_BINARY_DIR}/vm-logs/${VM_NAME})
  foreach(opt KERNEL MEM NUMA DISK)
    if(VM_${opt})
      string(TOLOWER ${opt} flag)
      list(APPEND cmd --${flag} ${VM_${opt}})
    endif()
  endforeach()
  if(VM_RDMA)
    list(APPEND cmd --rdma)
  endif()
  foreach(path ${VM_INCLUDE})
    list(APPEND cmd --include ${path})
  endforeach()
  foreach(mod ${VM_MODULES})
    list(APPEND cmd --module ${mod})
  endforeach()
  foreach(env ${VM_ENV})
    list(APPEND cmd --env ${env})
  endforeach()
  list(APPEND cmd ${VM_SCENARIO} ${VM_ARGS})

  add_test(NAME vm/${VM_NAME} COMMAND ${cmd})
  math(EXPR ctest_timeout "${VM_TIMEOUT} + 150")
  # A TCG guest keeps both vCPU threads busy: one VM at a time, and on a
  # 2-core machine nothing else beside it (PROCESSORS 2 under ctest -j2).
  set_tests_properties(vm/${VM_NAME} PROPERTIES LABELS vm TIMEOUT ${ctest_timeout}
                       RESOURCE_LOCK vm PROCESSORS 2)
  if(VM_DEPENDS)
    add_custom_target(vm_deps_${VM_NAME} ALL)
    add_dependencies(vm_deps_${VM_NAME} ${VM_DEPENDS})
  endif()
endfunction()

if(SPILL_VM_TESTS)
  enable_testing()
  # The harness itself: exit status, --out, --env, kernel warning, guest time
  # limit and a kernel panic each give the status they should.
  add_test(NAME vm/harness COMMAND ${SPILL_VM_DIR}/selftest/run)
  set_tests_properties(vm/harness PROPERTIES LABELS vm TIMEOUT 600
                       RESOURCE_LOCK vm PROCESSORS 2)

  spill_vm_test(NAME smoke SCENARIO smoke TIMEOUT 300
                INCLUDE $<TARGET_FILE:spillwayd> $<TARGET_FILE:spillctl>
                DEPENDS spillwayd spillctl)
  # numa_alloc: the scenario's client, allocating "any node" extents.
  add_executable(numa_alloc ${SPILL_VM_DIR}/numa_alloc.c)
  target_link_libraries(numa_alloc PRIVATE spillway_core)
  spill_vm_test(NAME numa SCENARIO numa NUMA 2 TIMEOUT 300
                INCLUDE $<TARGET_FILE:spillwayd> $<TARGET_FILE:spillctl>
                        $<TARGET_FILE:numa_alloc>
                MODULES virtio_net ENV SPILL_VM_NIC_NODE=1
                DEPENDS spillwayd spillctl numa_alloc)
  # A virtio NIC behind a PCI expander bridge on node 1, so that the guest's
  # sysfs gives a network device a NUMA node. SeaBIOS, not qboot: qboot
  # leaves the bridge's windows unassigned and the NIC is never found.
  # User networking with restrict=on: the NIC reaches nothing outside.
  set_tests_properties(vm/numa PROPERTIES ENVIRONMENT
    "SPILL_VM_QEMU_OPTS=-bios bios-256k.bin -device pxb,id=pxb1,bus_nr=8,numa_node=1 -netdev user,id=nic1,restrict=on -device virtio-net-pci,netdev=nic1,bus=pxb1,addr=1,romfile=")
  spill_vm_test(NAME swap-disk SCENARIO swap MEM 512M DISK 256M TIMEOUT 300)
endif()
include(${CMAKE_CURRENT_LIST_DIR}/nbd.cmake)
include(${CMAKE_CURRENT_LIST_DIR}/rdma.cmake)
