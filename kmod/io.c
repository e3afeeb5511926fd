// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * Requests on behalf of the block layer: allocate them from a mempool
 * (never fails, never enters reclaim), send them on a live connection of
 * the right server and session, wait for them, and wait (bounded) for a
 * server to come back when none of the ones an I/O needs is reachable.
 *
 * Failing fast: every check of a server, and conn.c when a connection
 * goes (spill_server_note), notes when it was first found without a live
 * connection (dev->down_since; 0 while it has one). Once none of the
 * servers an I/O needs has had one for longer than reconnect_wait, the I/O
 * does not wait at all: reads fail with -EIO (the owner gets SIGBUS),
 * writes with -EIO (the page stays in memory), counted in fast_fails, with
 * a rate-limited message. A server seen with a live connection again ends
 * it at once ("server N back"). A server down for less than that still
 * gets the bounded wait (reads up to reconnect_wait, writes a second),
 * which rides over a reconnect.
 *
 * Reads prefer the fastest copy: every answered request's latency feeds a
 * smoothed figure per server, and a read tries the current copies of a
 * chunk clearly faster servers first (spill_read_order).
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

/* Is server s up? Keeps dev->down_since[s] and says when it came back. */
static bool server_check(struct spill_dev *dev, unsigned int s)
{
	if (spill_server_up(dev, s)) {
		if (READ_ONCE(dev->down_since[s]))
			WRITE_ONCE(dev->down_since[s], 0);
		if (test_bit(s, &dev->lost_servers) && test_and_clear_bit(s, &dev->lost_servers))
			dev_info(disk_to_dev(dev->disk), "server %u back\n", s);
		return true;
	}
	if (!READ_ONCE(dev->down_since[s]))
		cmpxchg(&dev->down_since[s], 0, jiffies | 1); /* 0 means up */
	return false;
}

static bool any_up(struct spill_dev *dev, unsigned long servers)
{
	unsigned int s;
	bool up = false;

	/* Every one of them, so that each one's down_since is kept. */
	for_each_set_bit(s, &servers, SPILL_MAX_SERVERS)
		up |= server_check(dev, s);
	return up;
}

/* conn.c: a connection of server s went (it may have been the last one). */
void spill_server_note(struct spill_dev *dev, unsigned int s)
{
	server_check(dev, s);
}

/*
 * None of the servers (a bit mask) has had a live connection for longer
 * than reconnect_wait: an I/O that needs only them fails at once.
 */
bool spill_servers_lost(struct spill_dev *dev, unsigned long servers)
{
	unsigned long limit = READ_ONCE(spill_reconnect_wait) * HZ;
	unsigned int s;

	for_each_set_bit(s, &servers, SPILL_MAX_SERVERS) {
		unsigned long since;

		if (server_check(dev, s))
			return false;
		since = READ_ONCE(dev->down_since[s]);
		if (!since || time_before_eq(jiffies, since + limit))
			return false;
	}
	return servers != 0;
}

/* An I/O fails at once: count it, and say so now and then. */
static void fast_fail(struct spill_dev *dev, unsigned long servers)
{
	u64 n = atomic64_inc_return(&dev->st.fast_fails);
	unsigned long last = jiffies;
	bool seen = false;
	unsigned int s;

	/* None reachable since the last of them went. */
	for_each_set_bit(s, &servers, SPILL_MAX_SERVERS) {
		unsigned long d = READ_ONCE(dev->down_since[s]);

		if (d && (!seen || time_after(d, last))) {
			last = d;
			seen = true;
		}
		set_bit(s, &dev->lost_servers);
	}
	dev_err_ratelimited(disk_to_dev(dev->disk),
			    "no server reachable for %u s: failing I/O at once (%llu fast failures)\n",
			    jiffies_to_msecs(jiffies - last) / 1000, n);
}

/*
 * Wait until one of the servers (a bit mask) has a live connection, at most
 * until deadline, and not once the device is being removed, nor once they
 * have all been unreachable for longer than reconnect_wait (a fast
 * failure, counted here). True if one has.
 */
bool spill_wait_servers(struct spill_dev *dev, unsigned long servers, unsigned long deadline)
{
	while (!any_up(dev, servers)) {
		long left = (long)(deadline - jiffies);

		if (spill_servers_lost(dev, servers)) {
			fast_fail(dev, servers);
			return false;
		}
		if (left <= 0 || READ_ONCE(dev->dying))
			return false;
		wait_event_timeout(dev->conn_wq,
				   any_up(dev, servers) || READ_ONCE(dev->dying),
				   min_t(long, left, HZ));
	}
	return true;
}

/*
 * A request was answered: feed its latency (queued to answered) into its
 * server's smoothed figure, 1/8 per sample as TCP's srtt. Writes go to
 * every copy, so the figure of a server that reads avoid stays fresh.
 */
void spill_note_latency(struct spill_cmd *cmd)
{
	struct spill_server *srv = &cmd->dev->srv[cmd->server];
	unsigned long sample = jiffies_to_usecs(jiffies - cmd->start);
	unsigned long srtt = READ_ONCE(srv->srtt_us);

	WRITE_ONCE(srv->srtt_us, srtt - srtt / 8 + sample / 8);
}

/* Latency differences below this say nothing (jiffies resolution, noise). */
#define SPILL_RTT_SLACK_US 2000

/* Is server a clearly faster than server b: half its latency and more? */
static bool clearly_faster(struct spill_dev *dev, unsigned int a, unsigned int b)
{
	unsigned long ta = READ_ONCE(dev->srv[a].srtt_us);
	unsigned long tb = READ_ONCE(dev->srv[b].srtt_us);

	return 2 * ta + SPILL_RTT_SLACK_US < tb;
}

/*
 * The copies of chunk in the mask copies, in the order a read should try
 * them, into order[] (dev->replicas entries at most); returns how many. A
 * copy whose server is clearly faster goes ahead of a slower one; others
 * keep the copy order, which spreads reads over the servers chunk by chunk.
 * Any current copy returns the same bytes, so the order is only about time:
 * one slow link (congestion, netem delay) then costs reads nothing while
 * another copy answers.
 */
unsigned int spill_read_order(struct spill_dev *dev, u32 chunk, unsigned int copies,
			      u8 *order)
{
	unsigned int r, n = 0;

	for (r = 0; r < dev->replicas; r++) {
		unsigned int i = n;

		if (!(copies & BIT(r)))
			continue;
		while (i > 0 && clearly_faster(dev, spill_copy_server(dev, chunk, r),
					       spill_copy_server(dev, chunk, order[i - 1]))) {
			order[i] = order[i - 1];
			i--;
		}
		order[i] = r;
		n++;
	}
	return n;
}
