"""Statistics through azure-batch 13.0.0 (msrest BatchServiceClient): a task that burns CPU
and writes a file, read back with $expand=stats on the task, its job and its pool, and the
account's lifetime job and pool statistics. The numbers come from what the processes used.
"""

import datetime

import pytest

import azure.batch.models as batchmodels

from batchutil import add_pool, delete_quietly, dump, pick_linux_image, unique, wait_nodes, wait_task_completed, wait_until

# Written against azure-batch 13.0.0's names (api-version 2022-10-01.16.0).
pytestmark = pytest.mark.sdk_versions("13.0.0")

WAIT = 60
ZERO = datetime.timedelta(0)
BURN = "i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done; head -c 1048576 /dev/zero > out.bin"


def test_statistics_of_a_task_its_job_and_its_pool(batch_client):
    client = batch_client
    pool_id, job_id = unique("stats"), unique("statsjob")
    add_pool(client, pool_id, pick_linux_image(client), nodes=1)
    try:
        wait_nodes(client, pool_id, 1, batchmodels.ComputeNodeState.idle, timeout=WAIT)
        client.job.add(batchmodels.JobAddParameter(id=job_id, pool_info=batchmodels.PoolInformation(pool_id=pool_id)))
        client.task.add(job_id, batchmodels.TaskAddParameter(id="burn", command_line="/bin/sh -c '%s'" % BURN))
        wait_task_completed(client, job_id, "burn", WAIT)

        assert client.task.get(job_id, "burn").stats is None
        task = client.task.get(job_id, "burn", task_get_options=batchmodels.TaskGetOptions(expand="stats"))
        s = task.stats
        assert s is not None, dump(task)
        assert s.user_cpu_time > ZERO and s.wall_clock_time > ZERO, dump(s)
        assert isinstance(s.write_iops, int) and s.write_iops >= 0, dump(s)
        assert s.url.endswith("/jobs/%s/tasks/burn/stats" % job_id)
        listed = list(client.task.list(job_id, task_list_options=batchmodels.TaskListOptions(expand="stats")))
        assert listed[0].stats.user_cpu_time == s.user_cpu_time

        job = client.job.get(job_id, job_get_options=batchmodels.JobGetOptions(expand="stats"))
        assert (job.stats.num_succeeded_tasks, job.stats.num_failed_tasks, job.stats.num_task_retries) == (1, 0, 0), dump(job.stats)
        assert job.stats.user_cpu_time == s.user_cpu_time
        life = client.job.get_all_lifetime_statistics()
        assert life.num_succeeded_tasks >= 1 and life.user_cpu_time >= s.user_cpu_time, dump(life)

        def pool_stats():
            p = client.pool.get(pool_id, pool_get_options=batchmodels.PoolGetOptions(expand="stats"))
            return bool(p.stats and p.stats.usage_stats.dedicated_core_time > ZERO), p.stats

        ps = wait_until("pool statistics", pool_stats, timeout=30)
        assert ps.resource_stats.peak_memory_gi_b > 0 and ps.resource_stats.avg_cpu_percentage >= 0, dump(ps)
        assert ps.resource_stats.network_read_gi_b == 0.0
        lifetime_pools = client.pool.get_all_lifetime_statistics()
        assert lifetime_pools.usage_stats.dedicated_core_time >= ps.usage_stats.dedicated_core_time, dump(lifetime_pools)
    finally:
        delete_quietly(client.job.delete, job_id)
        delete_quietly(client.pool.delete, pool_id)
