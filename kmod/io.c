// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * Requests on behalf of the block layer: allocate them from a mempool
 * (never fails, never enters reclaim), send them on a live connection of
 * the right server and session, wait for them, and wait (bounded) for a
 * server to come back when none of the ones an I/O needs is reachable.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/jiffies.h>
#include <linux/sched.h>
#include <linux/string.h>

#include "spill.h"

void spill_io_begin(struct spill_dev *dev)
{
	atomic_inc(&dev->active);
}

void spill_io_end(struct spill_dev *dev)
{
	if (atomic_dec_and_test(&dev->active))
		wake_up_all(&dev->idle_wq);
}

struct spill_cmd *spill_cmd_alloc(struct spill_dev *dev)
{
	struct spill_cmd *cmd = mempool_alloc(dev->cmd_pool, GFP_NOIO);

	memset(cmd, 0, sizeof(*cmd));
	cmd->dev = dev;
	init_completion(&cmd->wait);
	spill_io_begin(dev);
	return cmd;
}

void spill_cmd_free(struct spill_cmd *cmd)
{
	struct spill_dev *dev = cmd->dev;

	mempool_free(cmd, dev->cmd_pool);
	spill_io_end(dev);
}

/*
 * Send cmd to cmd->server in session cmd->epoch; cmd->done follows.
 * -ENOTCONN when no connection of that session is alive (cmd untouched).
 */
int spill_submit(struct spill_cmd *cmd)
{
	unsigned int tries;

	/* A connection can die between choosing it and queueing on it. */
	for (tries = 0; tries <= SPILL_MAX_CONNS; tries++) {
		struct spill_conn *conn = spill_conn_get(cmd->dev, cmd->server, cmd->epoch);
		int rc;

		if (!conn)
			break;
		rc = spill_conn_queue(conn, cmd);
		spill_conn_put(conn);
		if (rc != -ENOTCONN)
			return rc;
	}
	return -ENOTCONN;
}

static void exec_done(struct spill_cmd *cmd)
{
	complete(&cmd->wait);
}

/* Submit and wait. Connections time out, so the wait ends; waking every
 * second keeps a long one from looking like a hung task. */
int spill_exec(struct spill_cmd *cmd)
{
	int rc;

	cmd->done = exec_done;
	rc = spill_submit(cmd);
	if (rc)
		return rc;
	while (!wait_for_completion_io_timeout(&cmd->wait, HZ))
		;
	return cmd->status;
}

static bool any_up(struct spill_dev *dev, unsigned long servers)
{
	unsigned int s;

	for_each_set_bit(s, &servers, SPILL_MAX_SERVERS)
		if (spill_server_up(dev, s))
			return true;
	return false;
}

/*
 * Wait until one of the servers (a bit mask) has a live connection, at most
 * until deadline, and not once the device is being removed. True if one has.
 */
bool spill_wait_servers(struct spill_dev *dev, unsigned long servers, unsigned long deadline)
{
	while (!any_up(dev, servers)) {
		long left = (long)(deadline - jiffies);

		if (left <= 0 || READ_ONCE(dev->dying))
			return false;
		wait_event_timeout(dev->conn_wq,
				   any_up(dev, servers) || READ_ONCE(dev->dying),
				   min_t(long, left, HZ));
	}
	return true;
}
