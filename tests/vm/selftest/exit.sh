# Exits with the status given as its first argument, after leaving a file
# with its arguments and environment in $SPILL_VM_OUT.
printf '%s\n' "$@" >"$SPILL_VM_OUT/args"
echo "$SPILL_VM_SELFTEST" >"$SPILL_VM_OUT/env"
exit "$1"
