/* SPDX-License-Identifier: MIT */
/*
 * server/numa_place.c: device → node lookups answer -1 whenever the kernel
 * cannot say (and never read outside /sys/class/net/IFNAME/device/), agree
 * with sysfs for the devices this machine has, and the CPU-node helpers
 * give a node a thread can be pinned to. The two-node behaviour itself is
 * checked in the VM (tests/vm/scenarios/numa.sh).
 */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <numa.h>

#include "numa_place.h"

static void test_unknown_devices(void **state)
{
	(void)state;
	assert_int_equal(numa_node_of_netdev("lo"), -1);
	assert_int_equal(numa_node_of_netdev("no-such-dev0"), -1);
	assert_int_equal(numa_node_of_netdev(""), -1);
	assert_int_equal(numa_node_of_netdev(NULL), -1);
	assert_int_equal(numa_node_of_netdev(".."), -1);
	assert_int_equal(numa_node_of_netdev("../../devices/system/node"), -1);
	assert_int_equal(numa_node_of_netdev("a-name-longer-than-ifnamsiz"), -1);
	assert_int_equal(numa_node_of_ibdev("no-such-hca0"), -1);
	assert_int_equal(numa_node_of_ibdev(NULL), -1);
	assert_int_equal(numa_node_of_ibdev(".."), -1);
	assert_int_equal(numa_node_of_ibdev("../../devices/system/node"), -1);
}

/* Every device: with a device/numa_node file, the same answer (-1 for the
 * kernel's "no affinity"); with no device at all, -1; else a node or -1. */
static void test_matches_sysfs(void **state)
{
	(void)state;
	DIR *d = opendir("/sys/class/net");
	if (!d)
		skip();
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		char path[512];
		snprintf(path, sizeof(path), "/sys/class/net/%s/device", e->d_name);
		int got = numa_node_of_netdev(e->d_name);
		if (access(path, F_OK)) {
			assert_int_equal(got, -1);
			continue;
		}
		strcat(path, "/numa_node");
		FILE *f = fopen(path, "r");
		if (!f) {
			assert_true(got >= -1 && got <= numa_max_node());
			continue;
		}
		int want = -1;
		if (fscanf(f, "%d", &want) != 1 || want < 0)
			want = -1;
		fclose(f);
		assert_int_equal(got, want);
	}
	closedir(d);
}

/* No single device owns these. */
static void test_loopback_and_wildcard(void **state)
{
	(void)state;
	assert_int_equal(numa_node_of_addr("127.0.0.1"), -1);
	assert_int_equal(numa_node_of_addr("127.1.2.3"), -1);
	assert_int_equal(numa_node_of_addr("0.0.0.0"), -1);
	assert_int_equal(numa_node_of_addr("::1"), -1);
	assert_int_equal(numa_node_of_addr("::"), -1);
	assert_int_equal(numa_node_of_addr("no.such.host.invalid"), -1);
	/* TEST-NET-1: no interface of this machine has it. */
	assert_int_equal(numa_node_of_addr("192.0.2.1"), -1);
}

static void *where(void *arg)
{
	cpu_set_t *set = arg;
	sched_getaffinity(0, sizeof(*set), set);
	return NULL;
}

static void test_pin_to_first_cpu_node(void **state)
{
	(void)state;
	int nodes[64];
	int n = numa_cpu_nodes(nodes, 64);
	if (n == 0)
		skip(); /* no NUMA support in this kernel */
	for (int i = 1; i < n; i++)
		assert_true(nodes[i] > nodes[i - 1]);
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	assert_int_equal(numa_pin_attr(&attr, nodes[0]), 0);
	cpu_set_t got;
	pthread_t t;
	assert_int_equal(pthread_create(&t, &attr, where, &got), 0);
	pthread_join(t, NULL);
	pthread_attr_destroy(&attr);
	/* Only CPUs of that node. */
	for (int cpu = 0; cpu < CPU_SETSIZE; cpu++)
		if (CPU_ISSET(cpu, &got))
			assert_int_equal(numa_node_of_cpu(cpu), nodes[0]);
	assert_true(CPU_COUNT(&got) > 0);
	/* A node that does not exist cannot be pinned to. */
	pthread_attr_init(&attr);
	assert_int_equal(numa_pin_attr(&attr, 4095), -EINVAL);
	pthread_attr_destroy(&attr);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_unknown_devices),
		cmocka_unit_test(test_matches_sysfs),
		cmocka_unit_test(test_loopback_and_wildcard),
		cmocka_unit_test(test_pin_to_first_cpu_node),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
