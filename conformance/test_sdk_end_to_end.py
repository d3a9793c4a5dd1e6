"""End-to-end conformance through the official azure-batch SDK only.

Pools of real local nodes, jobs and tasks that really run on this machine;
every check goes through SDK calls, as a user's program would.
"""

import base64
import datetime
import secrets
import time

import pytest

import azure.batch.models as batchmodels
from azure.batch.models import BatchErrorException

from batchutil import (
    add_pool,
    delete_quietly,
    dump,
    http_details,
    pick_linux_image,
    read_task_file,
    unique,
    wait_nodes,
    wait_task_completed,
    wait_tasks_completed,
    wait_until,
)

ECHO_TASKS = 100

# Written against azure-batch 13.0.0's names (target_dedicated_nodes, task_slots_per_node,
# list_supported_images, TaskCountsResult); test_sdk_scenario.py covers every release.
pytestmark = pytest.mark.sdk_versions("13.0.0")


@pytest.fixture(scope="module")
def image(batch_client):
    return pick_linux_image(batch_client)


@pytest.fixture(scope="module")
def small_pool(batch_client, image):
    """One idle node with two task slots, shared by the small tests."""
    pool_id = unique("small")
    add_pool(batch_client, pool_id, image, nodes=1, task_slots_per_node=2)
    wait_nodes(batch_client, pool_id, 1, batchmodels.ComputeNodeState.idle, timeout=60)
    yield pool_id
    delete_quietly(batch_client.pool.delete, pool_id)


@pytest.fixture
def small_job(batch_client, small_pool):
    job_id = unique("job")
    batch_client.job.add(
        batchmodels.JobAddParameter(id=job_id, pool_info=batchmodels.PoolInformation(pool_id=small_pool))
    )
    yield job_id
    delete_quietly(batch_client.job.delete, job_id)


def test_supported_images_include_ubuntu(batch_client):
    img = pick_linux_image(batch_client)
    assert img.image_reference is not None, dump(img)
    assert img.image_reference.publisher and img.image_reference.offer and img.image_reference.sku, dump(img)
    assert img.os_type == batchmodels.OSType.linux, dump(img)


@pytest.mark.timeout(420)
def test_pool_job_tasks_files_resize_delete(batch_client, image):
    client = batch_client
    pool_id = unique("e2e-pool")
    job_id = unique("e2e-job")

    # -- pool with a start task that must succeed before tasks are scheduled
    start_task = batchmodels.StartTask(
        command_line='/bin/sh -c "echo started > $AZ_BATCH_NODE_SHARED_DIR/started.txt"',
        wait_for_success=True,
    )
    add_pool(client, pool_id, image, nodes=2, task_slots_per_node=2, start_task=start_task)
    try:
        pool = client.pool.get(pool_id)
        assert pool.id == pool_id
        assert pool.vm_size == "standard_d2_v3", dump(pool)
        assert pool.task_slots_per_node == 2, dump(pool)
        assert pool.target_dedicated_nodes == 2, dump(pool)
        assert pool.virtual_machine_configuration.node_agent_sku_id == image.node_agent_sku_id, dump(pool)

        nodes = wait_nodes(client, pool_id, 2, batchmodels.ComputeNodeState.idle, timeout=60)
        for node in nodes:
            info = node.start_task_info
            assert info is not None, "idle node has no start_task_info: %s" % dump(node)
            assert info.state == batchmodels.StartTaskState.completed, dump(node)
            assert info.exit_code == 0, dump(node)

        # -- job and 101 tasks
        client.job.add(
            batchmodels.JobAddParameter(id=job_id, pool_info=batchmodels.PoolInformation(pool_id=pool_id))
        )
        job = client.job.get(job_id)
        assert job.pool_info.pool_id == pool_id, dump(job)

        echo_ids = ["echo-%03d" % i for i in range(ECHO_TASKS)]
        tasks = [
            batchmodels.TaskAddParameter(id=tid, command_line='/bin/sh -c "echo $AZ_BATCH_TASK_ID"')
            for tid in echo_ids
        ]
        result = client.task.add_collection(job_id, tasks)
        assert len(result.value) == ECHO_TASKS, dump(result)
        bad = [r for r in result.value if r.status != batchmodels.TaskAddStatus.success]
        assert not bad, "add_collection reported failures: %s" % [dump(r) for r in bad]
        assert sorted(r.task_id for r in result.value) == echo_ids

        client.task.add(job_id, batchmodels.TaskAddParameter(id="exit3", command_line='/bin/sh -c "exit 3"'))

        done = wait_tasks_completed(client, job_id, ECHO_TASKS + 1, timeout=120)
        by_id = {t.id: t for t in done}
        assert sorted(by_id) == sorted(echo_ids + ["exit3"])

        for tid in echo_ids:
            t = by_id[tid]
            info = t.execution_info
            assert info is not None, dump(t)
            assert info.exit_code == 0, dump(t)
            assert info.result == batchmodels.TaskExecutionResult.success, dump(t)
            assert t.node_info is not None and t.node_info.pool_id == pool_id, dump(t)
            out = read_task_file(client, job_id, tid, "stdout.txt")
            assert out == ("%s\n" % tid).encode(), "stdout of %s: %r" % (tid, out)

        t = by_id["exit3"]
        info = t.execution_info
        assert info.exit_code == 3, dump(t)
        assert info.result == batchmodels.TaskExecutionResult.failure, dump(t)
        assert info.failure_info is not None, dump(t)
        assert info.failure_info.category == batchmodels.ErrorCategory.user_error, dump(t)

        # -- task counts
        def counts_settled():
            c = client.job.get_task_counts(job_id)
            tc = c.task_counts
            ok = (tc.completed, tc.succeeded, tc.failed, tc.active, tc.running) == (ECHO_TASKS + 1, ECHO_TASKS, 1, 0, 0)
            return ok, dump(c)

        wait_until("task counts of %s" % job_id, counts_settled, timeout=10)

        # -- files
        files = list(client.file.list_from_task(job_id, "echo-000", recursive=True))
        names = {f.name: f for f in files}
        assert "stdout.txt" in names and "stderr.txt" in names, [dump(f) for f in files]
        stdout_entry = names["stdout.txt"]
        assert not stdout_entry.is_directory, dump(stdout_entry)
        assert stdout_entry.properties is not None, dump(stdout_entry)
        assert stdout_entry.properties.content_length == len("echo-000\n"), dump(stdout_entry)

        props = client.file.get_properties_from_task(job_id, "echo-000", "stdout.txt", raw=True)
        assert props.headers["Content-Length"] == len("echo-000\n"), props.headers
        assert props.headers["ocp-batch-file-isdirectory"] is False, props.headers

        # -- resize down to one node
        client.pool.resize(pool_id, batchmodels.PoolResizeParameter(target_dedicated_nodes=1))

        def resized():
            p = client.pool.get(pool_id)
            ok = p.current_dedicated_nodes == 1 and p.allocation_state == batchmodels.AllocationState.steady
            if ok:
                ok = len(list(client.compute_node.list(pool_id))) == 1
            return ok, "target=%s current=%s allocation_state=%s" % (
                p.target_dedicated_nodes,
                p.current_dedicated_nodes,
                p.allocation_state,
            )

        wait_until("pool %s resized to 1 node" % pool_id, resized, timeout=60)

        # -- delete job and pool
        client.job.delete(job_id)
        client.pool.delete(pool_id)

        def pool_gone():
            exists = client.pool.exists(pool_id)
            return exists is False, exists

        wait_until("pool %s deleted" % pool_id, pool_gone, timeout=30)
    finally:
        delete_quietly(client.job.delete, job_id)
        delete_quietly(client.pool.delete, pool_id)


def test_missing_job_is_job_not_found(batch_client):
    with pytest.raises(BatchErrorException) as exc:
        batch_client.job.get("no-such-job-%d" % int(time.time()))
    assert exc.value.response.status_code == 404, http_details(exc.value)
    assert exc.value.error.code == "JobNotFound", http_details(exc.value)


def test_duplicate_task_is_task_exists(batch_client, small_job):
    add = batchmodels.TaskAddParameter(id="dup", command_line="/bin/true")
    batch_client.task.add(small_job, add)
    with pytest.raises(BatchErrorException) as exc:
        batch_client.task.add(small_job, add)
    assert exc.value.response.status_code == 409, http_details(exc.value)
    assert exc.value.error.code == "TaskExists", http_details(exc.value)


def test_wrong_key_is_rejected(openbatch):
    wrong_key = base64.b64encode(secrets.token_bytes(64)).decode("ascii")
    assert wrong_key != openbatch.key
    client = openbatch.client(key=wrong_key)
    with pytest.raises(BatchErrorException) as exc:
        list(client.pool.list())
    assert exc.value.response.status_code == 403, http_details(exc.value)
    assert exc.value.error is not None and exc.value.error.code == "AuthenticationFailed", http_details(exc.value)


def test_task_retries_until_max_task_retry_count(batch_client, small_job):
    batch_client.task.add(
        small_job,
        batchmodels.TaskAddParameter(
            id="retry",
            command_line='/bin/sh -c "exit 1"',
            constraints=batchmodels.TaskConstraints(max_task_retry_count=2),
        ),
    )
    t = wait_task_completed(batch_client, small_job, "retry", timeout=60)
    info = t.execution_info
    assert info.retry_count == 2, dump(t)
    assert info.exit_code == 1, dump(t)
    assert info.result == batchmodels.TaskExecutionResult.failure, dump(t)


def test_max_wall_clock_time_ends_task(batch_client, small_job):
    started = time.monotonic()
    batch_client.task.add(
        small_job,
        batchmodels.TaskAddParameter(
            id="sleeper",
            command_line="/bin/sleep 30",
            constraints=batchmodels.TaskConstraints(max_wall_clock_time=datetime.timedelta(seconds=2)),
        ),
    )
    t = wait_task_completed(batch_client, small_job, "sleeper", timeout=15)
    assert time.monotonic() - started < 15
    assert t.execution_info.result == batchmodels.TaskExecutionResult.failure, dump(t)
    assert t.execution_info.failure_info is not None, dump(t)


def test_failed_start_task_marks_node_start_task_failed(batch_client, image):
    pool_id = unique("stfail")
    add_pool(
        batch_client,
        pool_id,
        image,
        nodes=1,
        start_task=batchmodels.StartTask(command_line='/bin/sh -c "exit 7"', wait_for_success=True),
    )
    try:
        nodes = wait_nodes(batch_client, pool_id, 1, batchmodels.ComputeNodeState.start_task_failed, timeout=60)
        info = nodes[0].start_task_info
        assert info is not None, dump(nodes[0])
        assert info.exit_code == 7, dump(nodes[0])
        assert info.result == batchmodels.TaskExecutionResult.failure, dump(nodes[0])
    finally:
        delete_quietly(batch_client.pool.delete, pool_id)


def test_start_task_output_is_on_the_node(batch_client, image):
    """The start task's file in the node's shared dir can be read back."""
    pool_id = unique("stok")
    add_pool(
        batch_client,
        pool_id,
        image,
        nodes=1,
        start_task=batchmodels.StartTask(
            command_line='/bin/sh -c "echo started > $AZ_BATCH_NODE_SHARED_DIR/started.txt"',
            wait_for_success=True,
        ),
    )
    try:
        nodes = wait_nodes(batch_client, pool_id, 1, batchmodels.ComputeNodeState.idle, timeout=60)
        data = b"".join(batch_client.file.get_from_compute_node(pool_id, nodes[0].id, "shared/started.txt"))
        assert data == b"started\n"
    finally:
        delete_quietly(batch_client.pool.delete, pool_id)
