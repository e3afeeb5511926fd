# kmod/kmod.cmake: spillway.ko, built with Kbuild for every kernel whose
# headers are installed, its VM test programs, and its VM scenarios.
# Included from the top-level CMakeLists.txt (after tests/vm/vm.cmake).
#
# Kernels: SPILL_KMOD_KERNELS (a list of versions such as 6.1.0-56-amd64),
# or by default every /usr/src/linux-headers-<version> that can build
# modules. Each build runs in <build>/kmod/<version>/ (a copy of kmod/ and
# proto/wire.h, so the source tree stays clean) with W=1 and -Werror:
# a warning fails the build. Targets: kmod-<version> each, `kmod` for all.

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
# They need the module built for the guest's kernel.
if(SPILL_VM_TESTS)
  execute_process(COMMAND ${CMAKE_SOURCE_DIR}/tests/vm/fetch-kernel --cached
                  OUTPUT_VARIABLE _kmod_vm_kernel OUTPUT_STRIP_TRAILING_WHITESPACE
                  RESULT_VARIABLE _kmod_vm_cached ERROR_QUIET)
  if(NOT _kmod_vm_cached EQUAL 0 OR NOT TARGET kmod-${_kmod_vm_kernel})
    message(STATUS "spillway.ko VM tests: off (the guest kernel's headers are not "
                   "installed yet: run tests/vm/fetch-kernel, then configure again)")
  else()
    set(_kmod_ko ${CMAKE_BINARY_DIR}/kmod/${_kmod_vm_kernel}/kmod/spillway.ko)
    set(_kmod_guest INCLUDE ${_kmod_ko} $<TARGET_FILE:spillwayd> $<TARGET_FILE:spillctl>
        $<TARGET_FILE:spill-workload> $<TARGET_FILE:spill-mlockall>
        $<TARGET_FILE:spill-mangle> ${CMAKE_SOURCE_DIR}/tests/vm/scenarios/swap_lib.sh
        MODULES libcrc32c crc32c_generic
        DEPENDS kmod-${_kmod_vm_kernel} spillwayd spillctl spill-workload spill-mlockall
                spill-mangle)
    spill_vm_test(NAME swap-module SCENARIO ${CMAKE_SOURCE_DIR}/tests/vm/scenarios/swap_module.sh
                  MEM 1G TIMEOUT 300 ${_kmod_guest})
    spill_vm_test(NAME swap-replicas SCENARIO ${CMAKE_SOURCE_DIR}/tests/vm/scenarios/swap_replicas.sh
                  MEM 1G TIMEOUT 300 ${_kmod_guest})
    # Faults (issue 14's tests): fencing, pages changed under writeback,
    # swapoff under load, two devices, spillctl killed, every server down,
    # module parameters; and network faults on one server's link.
    spill_vm_test(NAME swap-faults SCENARIO ${CMAKE_SOURCE_DIR}/tests/vm/scenarios/swap_faults.sh
                  MEM 1G TIMEOUT 480 ${_kmod_guest})
    spill_vm_test(NAME swap-netem SCENARIO ${CMAKE_SOURCE_DIR}/tests/vm/scenarios/swap_netem.sh
                  MEM 1G TIMEOUT 300 ${_kmod_guest})
    # The benchmark is not a test: `cmake --build build --target swap-bench`.
    add_custom_target(swap-bench
      COMMAND ${SPILL_VM_DIR}/run --mem 1G --disk 1G --timeout 900
              --include ${_kmod_ko} --include $<TARGET_FILE:spillwayd>
              --include $<TARGET_FILE:spillctl> --include $<TARGET_FILE:spill-workload>
              --include $<TARGET_FILE:spill-mlockall>
              --include ${CMAKE_SOURCE_DIR}/tests/vm/scenarios/swap_lib.sh
              --module libcrc32c --module crc32c_generic
              --logs ${CMAKE_BINARY_DIR}/vm-logs/swap-bench
              --out ${CMAKE_BINARY_DIR}/swap-bench
              ${CMAKE_SOURCE_DIR}/tests/vm/scenarios/swap_bench.sh
      DEPENDS kmod-${_kmod_vm_kernel} spillwayd spillctl spill-workload spill-mlockall
      USES_TERMINAL VERBATIM)
  endif()
endif()
