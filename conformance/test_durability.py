"""Nothing accepted is lost when the service is killed with SIGKILL mid-run.

Each variant starts its own service on its own data dir, fills a job with
200 short tasks, kills the service while some tasks are done and some are
running, restarts it on the same data dir and port, and checks that the
pool, the job and every task are still there and that every task ends with
exit code 0 and the right output.

Variants:
- service-only: SIGKILL of the service process alone; its node agents (and
  their running tasks) outlive it, as after a crash of the service.
- process-group: SIGKILL of the service's whole process group, agents and
  running tasks included, as after a crash of the machine.
"""

import pytest

import azure.batch.models as batchmodels

from batchutil import (
    add_pool,
    dump,
    pick_linux_image,
    read_task_file,
    unique,
    wait_nodes,
    wait_tasks_completed,
    wait_until,
)

TASKS = 200

# Written against azure-batch 13.0.0's names (target_dedicated_nodes, task_slots_per_node,
# list_supported_images, TaskCountsResult); test_sdk_scenario.py covers every release.
pytestmark = pytest.mark.sdk_versions("13.0.0")


@pytest.mark.timeout(480)
@pytest.mark.parametrize("variant", ["service-only", "process-group"])
def test_sigkill_and_restart_loses_nothing(service_factory, variant):
    svc = service_factory().start()
    client = svc.client()

    image = pick_linux_image(client)
    pool_id = unique("dur-pool")
    job_id = unique("dur-job")
    add_pool(client, pool_id, image, nodes=2)
    wait_nodes(client, pool_id, 2, batchmodels.ComputeNodeState.idle, timeout=60)

    client.job.add(batchmodels.JobAddParameter(id=job_id, pool_info=batchmodels.PoolInformation(pool_id=pool_id)))
    ids = ["t%03d" % i for i in range(TASKS)]
    for chunk in (ids[:100], ids[100:]):
        result = client.task.add_collection(
            job_id,
            [
                batchmodels.TaskAddParameter(id=tid, command_line='/bin/sh -c "sleep 0.2; echo $AZ_BATCH_TASK_ID"')
                for tid in chunk
            ],
        )
        bad = [r for r in result.value if r.status != batchmodels.TaskAddStatus.success]
        assert not bad, [dump(r) for r in bad]

    # Wait for a moment with some tasks completed and some running.
    def midway():
        tasks = list(client.task.list(job_id))
        completed = [t.id for t in tasks if t.state == batchmodels.TaskState.completed]
        running = [t.id for t in tasks if t.state == batchmodels.TaskState.running]
        ok = len(completed) >= 5 and running and len(completed) < TASKS - 20
        return ok, (completed, running) if ok else "completed=%d running=%d" % (len(completed), len(running))

    completed_before, running_before = wait_until("some tasks completed and some running", midway, timeout=60, interval=0.2)

    if variant == "service-only":
        svc.kill_service_only()
    else:
        svc.kill_group()

    svc.start()  # same data dir, same port, same key
    client = svc.client()

    pool = client.pool.get(pool_id)
    assert pool.id == pool_id and pool.target_dedicated_nodes == 2, dump(pool)
    job = client.job.get(job_id)
    assert job.pool_info.pool_id == pool_id, dump(job)
    listed = sorted(t.id for t in client.task.list(job_id))
    assert listed == ids, "tasks after restart: %d listed, missing %s, unexpected %s" % (
        len(listed),
        sorted(set(ids) - set(listed))[:20],
        sorted(set(listed) - set(ids))[:20],
    )
    # A task that had completed before the kill stays completed.
    for tid in completed_before:
        t = client.task.get(job_id, tid)
        assert t.state == batchmodels.TaskState.completed, dump(t)

    done = wait_tasks_completed(client, job_id, TASKS, timeout=180, interval=1)
    failed = [dump(t) for t in done if t.execution_info is None or t.execution_info.exit_code != 0]
    assert not failed, "%d tasks did not end with exit code 0, e.g. %s" % (len(failed), failed[:3])
    assert all(t.execution_info.result == batchmodels.TaskExecutionResult.success for t in done)

    sample = sorted(set(ids[::20]) | set(running_before[:10]) | set(completed_before[:5]))
    for tid in sample:
        out = read_task_file(client, job_id, tid, "stdout.txt")
        assert out == ("%s\n" % tid).encode(), "stdout of %s after restart: %r" % (tid, out)

    counts = client.job.get_task_counts(job_id).task_counts
    assert (counts.completed, counts.succeeded, counts.failed) == (TASKS, TASKS, 0), dump(counts)

    # The pool gets back to its target of two usable nodes.
    wait_nodes(client, pool_id, 2, batchmodels.ComputeNodeState.idle, timeout=60)
