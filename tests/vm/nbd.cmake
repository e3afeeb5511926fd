# VM scenario of the NBD export (included at the end of tests/vm/vm.cmake):
# the guest kernel's nbd driver, through nbd-client, swaps onto an export.
if(SPILL_VM_TESTS)
  find_program(SPILL_NBD_CLIENT nbd-client PATHS /usr/sbin /sbin)
  if(SPILL_NBD_CLIENT)
    spill_vm_test(NAME nbd-swap SCENARIO nbd_swap MEM 512M TIMEOUT 300
                  INCLUDE $<TARGET_FILE:spillwayd> $<TARGET_FILE:spillctl> ${SPILL_NBD_CLIENT}
                  MODULES nbd
                  DEPENDS spillwayd spillctl)
  else()
    message(STATUS "VM test nbd-swap: off (nbd-client missing; deploy/install-deps)")
  endif()
endif()
