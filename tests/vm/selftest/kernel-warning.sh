# Passes, but leaves a line the harness must treat as a kernel warning.
echo 'WARNING: x (written by the harness self-test)' >/dev/kmsg
