"""Pool operations through azure-batch 13.0.0: Update Properties, Remove Nodes, Stop Resize,
Spot nodes and their preemption (openbatch's admin command), and List Usage Metrics.
"""

import subprocess

import pytest

import azure.batch.models as batchmodels
from azure.batch.models import BatchErrorException

from conftest import openbatch_bin
from batchutil import add_pool, delete_quietly, pick_linux_image, unique, wait_nodes, wait_task_completed, wait_until

pytestmark = pytest.mark.sdk_versions("13.0.0")

WAIT = 60


def test_update_properties_and_remove_nodes(batch_client):
    client = batch_client
    pool_id = unique("ops-pool")
    try:
        add_pool(client, pool_id, pick_linux_image(client), 2)
        nodes = wait_nodes(client, pool_id, 2, batchmodels.ComputeNodeState.idle, WAIT)
        client.pool.update_properties(pool_id, batchmodels.PoolUpdatePropertiesParameter(
            certificate_references=[], application_package_references=[],
            metadata=[batchmodels.MetadataItem(name="owner", value="tests")],
            start_task=batchmodels.StartTask(command_line="/bin/true")))
        pool = client.pool.get(pool_id)
        assert [(m.name, m.value) for m in pool.metadata] == [("owner", "tests")]
        assert pool.start_task.command_line == "/bin/true"

        client.pool.remove_nodes(pool_id, batchmodels.NodeRemoveParameter(
            node_list=[nodes[0].id], node_deallocation_option="requeue"))
        wait_until("one node left", lambda: (
            [n.id for n in client.compute_node.list(pool_id)] == [nodes[1].id]
            and client.pool.get(pool_id).allocation_state == batchmodels.AllocationState.steady, None), WAIT)
        assert client.pool.get(pool_id).target_dedicated_nodes == 1

        with pytest.raises(BatchErrorException) as exc:
            client.pool.remove_nodes(pool_id, batchmodels.NodeRemoveParameter(node_list=["no-such-node"]))
        assert exc.value.error.code == "NodeNotFound"
        # Stopping a steady pool's resize is accepted and changes nothing.
        client.pool.stop_resize(pool_id)
        assert client.pool.get(pool_id).resize_errors is None
    finally:
        delete_quietly(client.pool.delete, pool_id)


def test_spot_node_preempted_mid_task(service_factory):
    svc = service_factory(extra_args=["--spot-recovery", "PT2S"]).start()
    client = svc.client()
    pool_id, job_id = unique("spot-pool"), unique("spot-job")
    try:
        image = pick_linux_image(client)
        client.pool.add(batchmodels.PoolAddParameter(
            id=pool_id, vm_size="standard_d2s_v3", target_low_priority_nodes=1,
            virtual_machine_configuration=batchmodels.VirtualMachineConfiguration(
                image_reference=image.image_reference, node_agent_sku_id=image.node_agent_sku_id)))
        node = wait_nodes(client, pool_id, 1, batchmodels.ComputeNodeState.idle, WAIT)[0]
        assert node.is_dedicated is False
        client.job.add(batchmodels.JobAddParameter(id=job_id, pool_info=batchmodels.PoolInformation(pool_id=pool_id)))
        client.task.add(job_id, batchmodels.TaskAddParameter(id="t", command_line="/bin/sh -c 'sleep 1; echo done'"))
        wait_until("t running", lambda: (client.task.get(job_id, "t").state == batchmodels.TaskState.running, None), WAIT)

        subprocess.run([openbatch_bin(), "preempt", "--url", svc.url, "--account", svc.account, "--key", svc.key,
                        "--pool", pool_id, "--node", node.id], check=True, capture_output=True, timeout=30)
        assert client.compute_node.get(pool_id, node.id).state == batchmodels.ComputeNodeState.preempted
        counts = [c for c in client.account.list_pool_node_counts() if c.pool_id == pool_id][0]
        assert counts.low_priority.preempted == 1 and counts.dedicated.total == 0
        # The task went back to the queue and runs when the node is restored.
        t = wait_task_completed(client, job_id, "t", WAIT)
        assert t.execution_info.exit_code == 0 and t.execution_info.requeue_count >= 0
        assert client.compute_node.get(pool_id, node.id).state in (
            batchmodels.ComputeNodeState.idle, batchmodels.ComputeNodeState.running)
    finally:
        delete_quietly(client.job.delete, job_id)
        delete_quietly(client.pool.delete, pool_id)


def test_usage_metrics_list(batch_client):
    # Metrics of the last complete interval: every entry is a well-formed half hour.
    for m in batch_client.pool.list_usage_metrics():
        assert (m.end_time - m.start_time).total_seconds() == 1800
        assert m.total_core_hours >= 0
