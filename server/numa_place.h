/* SPDX-License-Identifier: MIT */
/*
 * NUMA placement for spillwayd: which node a network device (and so a
 * listener) is on, and which nodes have CPUs for worker threads. Every
 * lookup answers -1 when the kernel does not know (no sysfs entry, a
 * virtual device, loopback, a wildcard address, a machine without NUMA).
 */
#ifndef SPILLWAY_NUMA_PLACE_H
#define SPILLWAY_NUMA_PLACE_H

#include <pthread.h>
#include <sys/socket.h>

/* The numa_node of /sys/class/net/IFNAME/device or, if it has none (a
 * virtio NIC), of its nearest ancestor that has one; -1 if unknown. */
int numa_node_of_netdev(const char *ifname);
/* The same for an RDMA device (/sys/class/infiniband/IBDEV/device); -1 for
 * soft-RoCE, which sits on no bus. */
int numa_node_of_ibdev(const char *ibdev);
/* The node of the device that owns this local address, or -1 (also for
 * loopback and wildcard addresses, which no single device owns). */
int numa_node_of_sockaddr(const struct sockaddr *sa);
/* As numa_node_of_sockaddr for the first address getaddrinfo gives HOST. */
int numa_node_of_addr(const char *host);

/* Nodes with CPUs this process may run on, ascending, at most max. Returns
 * the count; 0 when there is no NUMA support. */
int numa_cpu_nodes(int *nodes, int max);
/* Restrict threads created with attr to node's CPUs (those allowed to this
 * process). 0 or -errno. */
int numa_pin_attr(pthread_attr_t *attr, int node);

#endif
