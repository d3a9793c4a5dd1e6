"""Compute Node Disable and Enable Scheduling through azure-batch 13.0.0.

A one-node pool runs a task that waits for a marker file; scheduling is disabled with
`taskcompletion`, so the task finishes on the node while nothing new starts there; the node is
`offline` once the task completed, a new task stays active, and Enable Scheduling lets it run.
"""

import pytest

import azure.batch.models as batchmodels
from azure.batch.models import BatchErrorException

from batchutil import add_pool, delete_quietly, pick_linux_image, unique, wait_nodes, wait_task_completed, wait_until

pytestmark = pytest.mark.sdk_versions("13.0.0")

WAIT = 60


def test_disable_scheduling_lets_the_running_task_finish(batch_client, tmp_path):
    client = batch_client
    pool_id, job_id = unique("sched-pool"), unique("sched-job")
    marker = tmp_path / "go"
    tmp_path.chmod(0o755)
    try:
        add_pool(client, pool_id, pick_linux_image(client), 1)
        node = wait_nodes(client, pool_id, 1, batchmodels.ComputeNodeState.idle, WAIT)[0]
        client.job.add(batchmodels.JobAddParameter(id=job_id, pool_info=batchmodels.PoolInformation(pool_id=pool_id)))
        waiter = "/bin/sh -c 'while [ ! -e %s ]; do sleep 0.1; done'" % marker
        client.task.add(job_id, batchmodels.TaskAddParameter(id="first", command_line=waiter))
        wait_until("first running", lambda: (client.task.get(job_id, "first").state == batchmodels.TaskState.running, None), WAIT)

        client.compute_node.disable_scheduling(pool_id, node.id, node_disable_scheduling_option="taskcompletion")
        n = client.compute_node.get(pool_id, node.id)
        assert n.scheduling_state == batchmodels.SchedulingState.disabled and n.state == batchmodels.ComputeNodeState.running, n
        client.task.add(job_id, batchmodels.TaskAddParameter(id="second", command_line="/bin/true"))
        marker.write_text("go")
        wait_task_completed(client, job_id, "first", WAIT)
        wait_until("node offline", lambda: (client.compute_node.get(pool_id, node.id).state == batchmodels.ComputeNodeState.offline, None), WAIT)
        assert client.task.get(job_id, "second").state == batchmodels.TaskState.active

        client.compute_node.enable_scheduling(pool_id, node.id)
        second = wait_task_completed(client, job_id, "second", WAIT)
        assert second.execution_info.exit_code == 0 and second.node_info.node_id == node.id
        assert client.compute_node.get(pool_id, node.id).scheduling_state == batchmodels.SchedulingState.enabled

        with pytest.raises(BatchErrorException) as exc:
            client.compute_node.disable_scheduling(pool_id, "no-such-node")
        assert exc.value.error.code == "NodeNotFound"
    finally:
        delete_quietly(client.job.delete, job_id)
        delete_quietly(client.pool.delete, pool_id)
