# Never finishes: opening a fifo nobody writes blocks forever. A leftover
# child must not keep the guest from reporting either.
mkfifo /tmp/never
cat /tmp/never &
read -r _ </tmp/never
