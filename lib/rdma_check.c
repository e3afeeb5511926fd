/* SPDX-License-Identifier: MIT */
#include "rdma_check.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <infiniband/verbs.h>

#define CAP_IPC_LOCK_BIT 14

int rdma_check_devices(char *why, size_t cap)
{
	int n = 0;
	struct ibv_device **list = ibv_get_device_list(&n);
	if (list)
		ibv_free_device_list(list);
	if (n > 0)
		return 0;
	if (access("/dev/infiniband", F_OK))
		snprintf(why, cap, "no RDMA device: /dev/infiniband is missing (load the driver, "
			 "e.g. `modprobe rdma_rxe`; in a container, pass --device /dev/infiniband)");
	else
		snprintf(why, cap, "no RDMA device: for soft-RoCE run "
			 "`rdma link add rxe0 type rxe netdev <ethernet device>`");
	return -ENODEV;
}

static const char *port_state_name(enum ibv_port_state st)
{
	switch (st) {
	case IBV_PORT_DOWN: return "DOWN";
	case IBV_PORT_INIT: return "INIT";
	case IBV_PORT_ARMED: return "ARMED";
	case IBV_PORT_ACTIVE_DEFER: return "ACTIVE_DEFER";
	default: return "not active";
	}
}

int rdma_check_port(struct ibv_context *ctx, uint8_t port, int *mtu, char *why, size_t cap)
{
	struct ibv_port_attr pa;
	const char *dev = ibv_get_device_name(ctx->device);
	if (ibv_query_port(ctx, port, &pa)) {
		snprintf(why, cap, "cannot query port %u of %s: %s", port, dev, strerror(errno));
		return -errno;
	}
	if (pa.state != IBV_PORT_ACTIVE) {
		snprintf(why, cap, "port %u of RDMA device %s is %s: bring up the network device "
			 "under it (`ip link set DEV up`) and check `rdma link`", port, dev,
			 port_state_name(pa.state));
		return -ENETDOWN;
	}
	/* IBV_MTU_256 is 1, each step doubles; an rxe port on a 1500-byte
	 * Ethernet reports 1024, not the 4096 IB allows. */
	if (mtu)
		*mtu = pa.active_mtu >= IBV_MTU_256 && pa.active_mtu <= IBV_MTU_4096
			       ? 256 << (pa.active_mtu - IBV_MTU_256) : 0;
	return 0;
}

static int have_ipc_lock(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	if (!f)
		return 0;
	char line[256];
	unsigned long long eff = 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "CapEff: %llx", &eff) == 1)
			break;
	fclose(f);
	return (eff >> CAP_IPC_LOCK_BIT) & 1;
}

static void format_limit(rlim_t v, char *buf, size_t cap)
{
	if (v == RLIM_INFINITY)
		snprintf(buf, cap, "unlimited");
	else
		snprintf(buf, cap, "%llu KiB", (unsigned long long)v / 1024);
}

static void memlock_advice(size_t need, rlim_t have, char *why, size_t cap)
{
	char lim[32];
	format_limit(have, lim, sizeof(lim));
	snprintf(why, cap, "RDMA needs %zu KiB of locked memory but RLIMIT_MEMLOCK is %s: "
		 "raise it (`ulimit -l unlimited`, systemd LimitMEMLOCK=infinity, "
		 "docker --ulimit memlock=-1) or grant CAP_IPC_LOCK", need / 1024, lim);
}

int rdma_check_memlock(size_t need, char *why, size_t cap)
{
	struct rlimit rl;
	if (have_ipc_lock() || getrlimit(RLIMIT_MEMLOCK, &rl) || rl.rlim_cur == RLIM_INFINITY ||
	    rl.rlim_cur >= need)
		return 0;
	memlock_advice(need, rl.rlim_cur, why, cap);
	return -ENOMEM;
}

void rdma_explain_reg_failure(int err, size_t bytes, char *why, size_t cap)
{
	struct rlimit rl;
	if ((err == ENOMEM || err == EPERM || err == EAGAIN) && !have_ipc_lock() &&
	    !getrlimit(RLIMIT_MEMLOCK, &rl) && rl.rlim_cur != RLIM_INFINITY) {
		memlock_advice(bytes, rl.rlim_cur, why, cap);
		return;
	}
	snprintf(why, cap, "cannot register %zu bytes for RDMA: %s", bytes, strerror(err));
}

void rdma_explain_addr_failure(int err, const char *host, char *why, size_t cap)
{
	if (rdma_check_devices(why, cap))
		return;
	if (err == ENODEV || err == EADDRNOTAVAIL || err == EINVAL)
		snprintf(why, cap, "%s is not the address of an RDMA device's network interface "
			 "(see `rdma link` for which netdevs have one)", host);
	else
		snprintf(why, cap, "%s: %s", host, strerror(err));
}
