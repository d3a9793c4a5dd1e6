"""Compute node Reboot, Reimage and node users through azure-batch 13.0.0 (2020-09-01.12.0).

A one-node pool whose start task counts its runs in the node's shared directory runs a task;
Reboot with `terminate` ends the task (`TaskEnded`), the node comes back and its start task
runs again with the earlier output kept, and `recentTasks` shows the task. Reimage is refused
at this api-version as the service refuses it for a virtual machine pool. A user is added,
updated and deleted; a second add and an unknown user are refused with their Batch codes.
"""

import pytest

import azure.batch.models as batchmodels
from azure.batch.models import BatchErrorException

from batchutil import add_pool, delete_quietly, pick_linux_image, unique, wait_nodes, wait_task_completed, wait_until

pytestmark = pytest.mark.sdk_versions("13.0.0")

WAIT = 60


def boots(client, pool_id, node_id):
    data = b"".join(client.file.get_from_compute_node(pool_id, node_id, "shared/boots"))
    return data.decode().splitlines()


def test_reboot_reimage_and_users(batch_client):
    client = batch_client
    pool_id, job_id = unique("nodeops-pool"), unique("nodeops-job")
    start = batchmodels.StartTask(
        command_line="/bin/sh -c \"echo boot >> $AZ_BATCH_NODE_SHARED_DIR/boots\"", wait_for_success=True)
    try:
        add_pool(client, pool_id, pick_linux_image(client), 1, start_task=start)
        node = wait_nodes(client, pool_id, 1, batchmodels.ComputeNodeState.idle, WAIT)[0]
        assert boots(client, pool_id, node.id) == ["boot"]
        client.job.add(batchmodels.JobAddParameter(id=job_id, pool_info=batchmodels.PoolInformation(pool_id=pool_id)))
        client.task.add(job_id, batchmodels.TaskAddParameter(id="sleeper", command_line="/bin/sleep 60"))
        wait_until("sleeper running", lambda: (client.task.get(job_id, "sleeper").state == batchmodels.TaskState.running, None), WAIT)

        client.compute_node.reboot(pool_id, node.id, node_reboot_option="terminate")
        assert client.compute_node.get(pool_id, node.id).state == batchmodels.ComputeNodeState.rebooting
        sleeper = wait_task_completed(client, job_id, "sleeper", WAIT)
        assert sleeper.execution_info.failure_info.code == "TaskEnded"
        wait_nodes(client, pool_id, 1, batchmodels.ComputeNodeState.idle, WAIT)
        n = client.compute_node.get(pool_id, node.id)
        assert n.last_boot_time > node.last_boot_time
        assert boots(client, pool_id, node.id) == ["boot", "boot"]
        assert n.recent_tasks[0].task_id == "sleeper" and n.recent_tasks[0].task_state == batchmodels.TaskState.completed

        with pytest.raises(BatchErrorException) as exc:
            client.compute_node.reimage(pool_id, node.id, node_reimage_option="requeue")
        assert exc.value.error.code == "OperationNotValidOnNode"
        assert any(v.key == "Reason" and "cloudServiceConfiguration" in v.value for v in exc.value.error.values)

        user = batchmodels.ComputeNodeUser(name="sdkuser", is_admin=False, password="kt#_gahr!@aGERDXA")
        client.compute_node.add_user(pool_id, node.id, user)
        with pytest.raises(BatchErrorException) as exc:
            client.compute_node.add_user(pool_id, node.id, user)
        assert exc.value.error.code == "NodeUserExists"
        client.compute_node.update_user(pool_id, node.id, "sdkuser", batchmodels.NodeUpdateUserParameter(password="liilef#$DdRGSa_ewkjh"))
        client.compute_node.delete_user(pool_id, node.id, "sdkuser")
        with pytest.raises(BatchErrorException) as exc:
            client.compute_node.delete_user(pool_id, node.id, "sdkuser")
        assert exc.value.error.code == "NodeUserNotFound"
        with pytest.raises(BatchErrorException) as exc:
            client.compute_node.get_remote_login_settings(pool_id, node.id)
        assert exc.value.error.code == "OperationNotValidOnNode"
    finally:
        delete_quietly(client.job.delete, job_id)
        delete_quietly(client.pool.delete, pool_id)
