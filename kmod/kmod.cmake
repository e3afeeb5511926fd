# kmod/kmod.cmake: spillway.ko, built with Kbuild for every kernel whose
# headers are installed, its VM test programs, and its VM scenarios.
# Included from the top-level CMakeLists.txt (after tests/vm/vm.cmake).
#
# Kernels: SPILL_KMOD_KERNELS (a list of versions such as 6.1.0-56-amd64),
# or by default every /usr/src/linux-headers-<version> that can build
# modules, plus the VM guest kernels whose headers tests/vm/fetch-kernel
# has (6.12's live in its cache, not under /usr/src). Each build runs in
# <build>/kmod/<version>/ (a copy of kmod/ and proto/wire.h, so the source
# tree stays clean) with W=1 and -Werror: a warning fails the build.
# Targets: kmod-<version> each, `kmod` for all.

# The plain build has it all; sanitizer and fuzz trees leave it out.
if(SPILL_SANITIZE OR SPILL_FUZZ)
  return()
endif()

set(SPILL_KMOD_KERNELS "" CACHE STRING
    "Kernel versions to build spillway.ko for (default: every installed linux-headers)")

set(_kmod_versions ${SPILL_KMOD_KERNELS})
if(NOT _kmod_versions)
  file(GLOB _kmod_hdr_dirs LIST_DIRECTORIES true /usr/src/linux-headers-*)
  foreach(dir ${_kmod_hdr_dirs})
    if(EXISTS ${dir}/.config AND EXISTS ${dir}/Makefile)
      get_filename_component(name ${dir} NAME)
      string(REPLACE "linux-headers-" "" ver ${name})
      list(APPEND _kmod_versions ${ver})
    endif()
  endforeach()
endif()

# The VM guest kernels (one version per series, 6.1 and 6.12) whose image
# and headers are cached; _kmod_vm_<series> is empty for one that is not.
foreach(series 6.1 6.12)
  execute_process(COMMAND ${CMAKE_SOURCE_DIR}/tests/vm/fetch-kernel --cached --kernel ${series}
                  OUTPUT_VARIABLE _kmod_vm_${series} OUTPUT_STRIP_TRAILING_WHITESPACE
                  RESULT_VARIABLE rc ERROR_QUIET)
  if(NOT rc EQUAL 0)
    set(_kmod_vm_${series} "")
  elseif(NOT SPILL_KMOD_KERNELS)
    list(APPEND _kmod_versions ${_kmod_vm_${series}})
  endif()
endforeach()

# --- SPILL_KMOD_VM_DEBUG: the module scenarios on the debug kernel ---------
# With it on, spillway.ko is also built for the kernel that
# tests/vm/build-debug-kernel builds (lockdep, KASAN, DEBUG_ATOMIC_SLEEP,
# failslab; see docs/testing.md), and spill_kmod_vm_test() registers every
# scenario on it as vm/<name>-debug, whatever its kernels otherwise, with
# its time limit multiplied by SPILL_KMOD_VM_DEBUG_SLOWDOWN (KASAN and
# lockdep under TCG). _kmod_vm_debug: that kernel's version, or empty.
option(SPILL_KMOD_VM_DEBUG
       "Also run the spillway.ko VM scenarios on the debug kernel (tests/vm/build-debug-kernel)" OFF)
set(SPILL_KMOD_VM_DEBUG_SLOWDOWN 4 CACHE STRING "Time limit factor of the vm/*-debug scenarios")
set(_kmod_vm_debug "")
if(SPILL_KMOD_VM_DEBUG)
  execute_process(COMMAND ${CMAKE_SOURCE_DIR}/tests/vm/fetch-kernel --cached --kernel debug
                  OUTPUT_VARIABLE _kmod_vm_debug OUTPUT_STRIP_TRAILING_WHITESPACE
                  RESULT_VARIABLE rc ERROR_QUIET)
  if(NOT rc EQUAL 0)
    set(_kmod_vm_debug "")
    message(STATUS "spillway.ko VM tests on the debug kernel: skipped (not built: run "
                   "tests/vm/build-debug-kernel, then configure again)")
  else()
    list(APPEND _kmod_versions ${_kmod_vm_debug})
    message(STATUS "spillway.ko VM tests on the debug kernel: ${_kmod_vm_debug}")
  endif()
endif()
# _kmod_vm_debug_timeout(OUT ARGS...): OUT = TIMEOUT <limit> for the debug
# run of a scenario registered with ARGS (the later TIMEOUT wins).
function(_kmod_vm_debug_timeout out)
  cmake_parse_arguments(KD "" "TIMEOUT" "" ${ARGN})
  if(NOT KD_TIMEOUT)
    set(KD_TIMEOUT 600)
  endif()
  math(EXPR limit "${KD_TIMEOUT} * ${SPILL_KMOD_VM_DEBUG_SLOWDOWN}")
  set(${out} TIMEOUT ${limit} PARENT_SCOPE)
endfunction()

list(REMOVE_DUPLICATES _kmod_versions)

find_program(SPILL_MAKE make)
file(GLOB _kmod_sources CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/kmod/*.c
     ${CMAKE_SOURCE_DIR}/kmod/*.h)
list(APPEND _kmod_sources ${CMAKE_SOURCE_DIR}/kmod/Kbuild)

add_custom_target(kmod ALL)
set(SPILL_KMOD_BUILT "")
foreach(ver ${_kmod_versions})
  set(kdir /usr/src/linux-headers-${ver})
  if(NOT EXISTS ${kdir}/Makefile)
    set(kdir /lib/modules/${ver}/build)
  endif()
  if(NOT EXISTS ${kdir}/Makefile)
    execute_process(COMMAND ${CMAKE_SOURCE_DIR}/tests/vm/fetch-kernel --build-dir --kernel ${ver}
                    OUTPUT_VARIABLE kdir OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
  endif()
  if(NOT EXISTS ${kdir}/Makefile OR NOT SPILL_MAKE)
    message(STATUS "spillway.ko: no headers for ${ver}, skipped")
    continue()
  endif()
  set(out ${CMAKE_BINARY_DIR}/kmod/${ver})
  add_custom_command(
    OUTPUT ${out}/kmod/spillway.ko
    COMMAND ${CMAKE_COMMAND} -E make_directory ${out}/kmod ${out}/proto
    COMMAND ${CMAKE_COMMAND} -E copy_if_different ${_kmod_sources} ${out}/kmod/
    COMMAND ${CMAKE_COMMAND} -E copy_if_different ${CMAKE_SOURCE_DIR}/proto/wire.h
            ${out}/proto/
    COMMAND ${CMAKE_COMMAND} -E env MAKEFLAGS= ${SPILL_MAKE} -s -C ${kdir} M=${out}/kmod
            W=1 KCFLAGS=-Werror modules
    DEPENDS ${_kmod_sources} ${CMAKE_SOURCE_DIR}/proto/wire.h
    COMMENT "spillway.ko for ${ver}"
    VERBATIM)
  add_custom_target(kmod-${ver} DEPENDS ${out}/kmod/spillway.ko)
  add_dependencies(kmod kmod-${ver})
  list(APPEND SPILL_KMOD_BUILT ${ver})
endforeach()
if(SPILL_KMOD_BUILT)
  message(STATUS "spillway.ko: building for ${SPILL_KMOD_BUILT}")
else()
  message(STATUS "spillway.ko: no kernel headers installed, not built "
                 "(apt-get install linux-headers-<version>, or tests/vm/fetch-kernel)")
endif()

# --- programs the VM scenarios run ----------------------------------------
add_executable(spill-workload ${CMAKE_SOURCE_DIR}/kmod/tests/spill_workload.c)
target_link_libraries(spill-workload Threads::Threads)
add_library(spill-mlockall SHARED ${CMAKE_SOURCE_DIR}/kmod/tests/mlockall_preload.c)
add_executable(spill-mangle ${CMAKE_SOURCE_DIR}/kmod/tests/mangle_proxy.c)

# --- VM scenarios (tests/vm/scenarios/swap_*.sh) ---------------------------
# Each runs on both guest kernels, with the module built for each:
#
#   spill_kmod_vm_test(NAME <name> SCENARIO <path> [MEM <size>] [TIMEOUT <s>]
#                      [any other spill_vm_test() argument...])
#
# registers vm/<name> on 6.1 and vm/<name>-6.12 on 6.12 (logs in
# <build>/vm-logs/<name>[-6.12]/). The guest gets spillway.ko, spillwayd,
# spillctl, spill-workload, libspill-mlockall.so, spill-mangle, swap_lib.sh
# and the crc32c modules; INCLUDE, MODULES and DEPENDS add to those, the
# other arguments go to spill_vm_test() as they are. A kernel whose image
# or headers are missing is skipped (said once at configure time).
set(_kmod_vm_kernels "")
if(SPILL_VM_TESTS)
  foreach(series 6.1 6.12)
    set(ver ${_kmod_vm_${series}})
    if(NOT ver)
      message(STATUS "spillway.ko VM tests on ${series}: skipped (guest kernel or headers not "
                     "cached: run tests/vm/fetch-kernel --kernel ${series}, then configure again)")
    elseif(NOT TARGET kmod-${ver})
      message(STATUS "spillway.ko VM tests on ${series}: skipped (spillway.ko not built for ${ver})")
    else()
      list(APPEND _kmod_vm_kernels ${series})
      message(STATUS "spillway.ko VM tests on ${series}: guest kernel ${ver}")
    endif()
  endforeach()
endif()

# Scenarios marked FIRST_KERNEL_ONLY (their subject is the module's own
# locking and network handling, not the kernel's swap path) run on 6.1
# alone unless SPILL_KMOD_VM_ALL_KERNELS is on: each 6.12 boot costs the
# suite minutes under TCG.
option(SPILL_KMOD_VM_ALL_KERNELS "Run every spillway.ko VM scenario on every guest kernel" OFF)

function(spill_kmod_vm_test)
  cmake_parse_arguments(KT "FIRST_KERNEL_ONLY" "NAME;SCENARIO" "INCLUDE;MODULES;DEPENDS" ${ARGN})
  if(NOT KT_NAME OR NOT KT_SCENARIO)
    message(FATAL_ERROR "spill_kmod_vm_test needs NAME and SCENARIO")
  endif()
  set(kernels ${_kmod_vm_kernels})
  if(KT_FIRST_KERNEL_ONLY AND NOT SPILL_KMOD_VM_ALL_KERNELS AND kernels)
    list(GET kernels 0 kernels)
  endif()
  # SPILL_KMOD_VM_DEBUG (its block above): on the debug kernel too.
  if(SPILL_VM_TESTS AND _kmod_vm_debug AND TARGET kmod-${_kmod_vm_debug})
    list(APPEND kernels debug)
  endif()
  foreach(series ${kernels})
    set(ver ${_kmod_vm_${series}})
    set(name ${KT_NAME})
    if(NOT series STREQUAL "6.1")
      set(name ${KT_NAME}-${series})
    endif()
    set(slow "")
    if(series STREQUAL "debug")
      _kmod_vm_debug_timeout(slow ${KT_UNPARSED_ARGUMENTS})
    endif()
    spill_vm_test(NAME ${name} SCENARIO ${KT_SCENARIO} KERNEL ${series}
      INCLUDE ${CMAKE_BINARY_DIR}/kmod/${ver}/kmod/spillway.ko $<TARGET_FILE:spillwayd>
              $<TARGET_FILE:spillctl> $<TARGET_FILE:spill-workload>
              $<TARGET_FILE:spill-mlockall> $<TARGET_FILE:spill-mangle>
              ${CMAKE_SOURCE_DIR}/tests/vm/scenarios/swap_lib.sh ${KT_INCLUDE}
      MODULES libcrc32c crc32c_generic ${KT_MODULES}
      DEPENDS kmod-${ver} spillwayd spillctl spill-workload spill-mlockall spill-mangle
              ${KT_DEPENDS}
      ${KT_UNPARSED_ARGUMENTS} ${slow})
  endforeach()
endfunction()

spill_kmod_vm_test(NAME swap-module SCENARIO ${CMAKE_SOURCE_DIR}/tests/vm/scenarios/swap_module.sh
                   MEM 1G TIMEOUT 300)
# About 220 s on 6.1 and 250 s on 6.12 here: room for a slower machine.
# A stopped server stalls only its own requests.
spill_kmod_vm_test(NAME swap-stall SCENARIO ${CMAKE_SOURCE_DIR}/tests/vm/scenarios/swap_stall.sh
                   MEM 1G TIMEOUT 900 FIRST_KERNEL_ONLY)
spill_kmod_vm_test(NAME swap-replicas SCENARIO ${CMAKE_SOURCE_DIR}/tests/vm/scenarios/swap_replicas.sh
                   MEM 1G TIMEOUT 480)
# Background repair of copies (kmod/repair.c).
spill_kmod_vm_test(NAME swap-repair SCENARIO ${CMAKE_SOURCE_DIR}/tests/vm/scenarios/swap_repair.sh
                   MEM 1G TIMEOUT 300)
# Multi-page reads across copies that diverged (issue 14, krw).
spill_kmod_vm_test(NAME swap-diverge SCENARIO ${CMAKE_SOURCE_DIR}/tests/vm/scenarios/swap_diverge.sh
                   MEM 1G TIMEOUT 300)
# Faults: fencing, pages changed under writeback, swapoff under load, two
# devices, spillctl killed, every server down, module parameters; and
# network faults on one server's link.
spill_kmod_vm_test(NAME swap-faults SCENARIO ${CMAKE_SOURCE_DIR}/tests/vm/scenarios/swap_faults.sh
                   MEM 1G TIMEOUT 480)
# A server that lies in well-formed frames (spill-fault forges statuses).
spill_kmod_vm_test(NAME swap-lies SCENARIO ${CMAKE_SOURCE_DIR}/tests/vm/scenarios/swap_lies.sh
                   MEM 1G TIMEOUT 300 INCLUDE $<TARGET_FILE:spill-fault> DEPENDS spill-fault)
# Network faults on one server's link with two copies: delay, loss, a
# silent partition past io_timeout, repair after it (issue 14, knetem).
spill_kmod_vm_test(NAME swap-netem SCENARIO ${CMAKE_SOURCE_DIR}/tests/vm/scenarios/swap_netem.sh
                   MEM 1G TIMEOUT 360)
# A drained server emptied of live devices' pages (kmod/migrate.c, issue 14).
spill_kmod_vm_test(NAME swap-drain SCENARIO ${CMAKE_SOURCE_DIR}/tests/vm/scenarios/swap_drain.sh
                   MEM 1G TIMEOUT 300)

# The benchmark is not a test: `cmake --build build --target swap-bench` on
# 6.1, `--target swap-bench-6.12` on 6.12 (results in <build>/swap-bench[-6.12]/).
foreach(series ${_kmod_vm_kernels})
  set(ver ${_kmod_vm_${series}})
  set(name swap-bench)
  if(NOT series STREQUAL "6.1")
    set(name swap-bench-${series})
  endif()
  add_custom_target(${name}
    COMMAND ${SPILL_VM_DIR}/run --kernel ${series} --mem 1G --disk 1G --timeout 900
            --include ${CMAKE_BINARY_DIR}/kmod/${ver}/kmod/spillway.ko
            --include $<TARGET_FILE:spillwayd>
            --include $<TARGET_FILE:spillctl> --include $<TARGET_FILE:spill-workload>
            --include $<TARGET_FILE:spill-mlockall>
            --include ${CMAKE_SOURCE_DIR}/tests/vm/scenarios/swap_lib.sh
            --module libcrc32c --module crc32c_generic
            --logs ${CMAKE_BINARY_DIR}/vm-logs/${name}
            --out ${CMAKE_BINARY_DIR}/${name}
            ${CMAKE_SOURCE_DIR}/tests/vm/scenarios/swap_bench.sh
    DEPENDS kmod-${ver} spillwayd spillctl spill-workload spill-mlockall
    USES_TERMINAL VERBATIM)
endforeach()
