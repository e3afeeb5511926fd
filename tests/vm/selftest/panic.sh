# Crashes the guest kernel: no status ever comes back.
echo c >/proc/sysrq-trigger
