/* SPDX-License-Identifier: MIT */
#include "numa_place.h"

#include <errno.h>
#include <limits.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <numa.h>

/* "-1" or a node number from a sysfs numa_node file; -2 if there is none. */
static int read_node_file(const char *dir)
{
	char path[PATH_MAX + 16];
	snprintf(path, sizeof(path), "%s/numa_node", dir);
	FILE *f = fopen(path, "r");
	if (!f)
		return -2;
	int node = -1;
	if (fscanf(f, "%d", &node) != 1 || node < 0)
		node = -1; /* the kernel writes -1 when firmware gave no affinity */
	fclose(f);
	return node;
}

/* The node of the device behind a sysfs class entry's "device" link: the
 * first numa_node file up the device tree answers, even when it says -1. */
static int node_of_class_device(const char *class, const char *name)
{
	/* The name goes into a path: refuse anything that could leave the
	 * class directory. */
	if (!name || !name[0] || strlen(name) >= 64 || strchr(name, '/') ||
	    !strcmp(name, ".") || !strcmp(name, ".."))
		return -1;
	char link[128], dev[PATH_MAX];
	snprintf(link, sizeof(link), "/sys/class/%s/%s/device", class, name);
	if (!realpath(link, dev))
		return -1; /* virtual devices (lo, veth, rxe) have no device */
	/* A PCI function has numa_node itself; a virtio NIC's device is the
	 * virtio device, whose parent is the PCI function that has it. */
	for (;;) {
		int node = read_node_file(dev);
		if (node != -2)
			return node;
		char *slash = strrchr(dev, '/');
		if (!slash || slash == dev || !strcmp(dev, "/sys/devices"))
			return -1;
		*slash = '\0';
	}
}

int numa_node_of_netdev(const char *ifname)
{
	if (ifname && strlen(ifname) >= IFNAMSIZ)
		return -1;
	return node_of_class_device("net", ifname);
}

int numa_node_of_ibdev(const char *ibdev)
{
	return node_of_class_device("infiniband", ibdev);
}

static int is_local_only(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET) {
		uint32_t a = ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr);
		return a == INADDR_ANY || (a >> 24) == 127;
	}
	const struct in6_addr *a6 = &((const struct sockaddr_in6 *)sa)->sin6_addr;
	return IN6_IS_ADDR_UNSPECIFIED(a6) || IN6_IS_ADDR_LOOPBACK(a6);
}

static int same_addr(const struct sockaddr *a, const struct sockaddr *b)
{
	if (a->sa_family != b->sa_family)
		return 0;
	if (a->sa_family == AF_INET)
		return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
		       ((const struct sockaddr_in *)b)->sin_addr.s_addr;
	return !memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
		       &((const struct sockaddr_in6 *)b)->sin6_addr, sizeof(struct in6_addr));
}

int numa_node_of_sockaddr(const struct sockaddr *sa)
{
	if (!sa || (sa->sa_family != AF_INET && sa->sa_family != AF_INET6) || is_local_only(sa))
		return -1;
	struct ifaddrs *ifs;
	if (getifaddrs(&ifs))
		return -1;
	int node = -1;
	for (struct ifaddrs *i = ifs; i; i = i->ifa_next)
		if (i->ifa_addr && same_addr(i->ifa_addr, sa)) {
			node = numa_node_of_netdev(i->ifa_name);
			break;
		}
	freeifaddrs(ifs);
	return node;
}

int numa_node_of_addr(const char *host)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE }, *res;
	if (getaddrinfo(host, NULL, &hints, &res))
		return -1;
	int node = numa_node_of_sockaddr(res->ai_addr);
	freeaddrinfo(res);
	return node;
}

/* node's CPUs that this process may use, as a cpu_set_t; 0 if none. */
static int node_cpus(int node, cpu_set_t *set)
{
	struct bitmask *m = numa_allocate_cpumask();
	if (!m)
		return 0;
	int n = 0;
	CPU_ZERO(set);
	if (numa_node_to_cpus(node, m) == 0)
		for (unsigned cpu = 0; cpu < m->size && cpu < CPU_SETSIZE; cpu++)
			if (numa_bitmask_isbitset(m, cpu) &&
			    numa_bitmask_isbitset(numa_all_cpus_ptr, cpu)) {
				CPU_SET(cpu, set);
				n++;
			}
	numa_free_cpumask(m);
	return n;
}

int numa_cpu_nodes(int *nodes, int max)
{
	if (numa_available() < 0)
		return 0;
	int n = 0;
	cpu_set_t set;
	for (int node = 0; node <= numa_max_node() && n < max; node++)
		if (node_cpus(node, &set))
			nodes[n++] = node;
	return n;
}

int numa_pin_attr(pthread_attr_t *attr, int node)
{
	cpu_set_t set;
	if (numa_available() < 0 || !node_cpus(node, &set))
		return -EINVAL;
	return -pthread_attr_setaffinity_np(attr, sizeof(set), &set);
}
