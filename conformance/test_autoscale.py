"""Pool autoscale through azure-batch 13.0.0 (msrest BatchServiceClient).

A pool created with an autoscale formula on $PendingTasks grows when tasks are added and
shrinks once they completed. The service runs with `serve --clock-control`: instead of
waiting the five-minute evaluation interval, the test moves the service clock on
(Service.advance_clock returns once the scheduler acted on the new time). Enable, Evaluate and
Disable AutoScale, the pool's autoScaleRun and the errors are checked as the SDK surfaces them.
"""

import datetime

import pytest

import azure.batch.models as batchmodels
from batchutil import (
    add_pool,
    dump,
    expect_error,
    http_details,
    pick_linux_image,
    unique,
    vm_config,
    wait_nodes,
    wait_tasks_completed,
    wait_until,
)

# Written against azure-batch 13.0.0's names (api-version 2022-10-01.16.0).
pytestmark = pytest.mark.sdk_versions("13.0.0")

WAIT = 45
FORMULA = (
    "// one node per pending task, at most three\n"
    "pending = max(0, $PendingTasks.GetSample(1));\n"
    "$TargetDedicatedNodes = min(3, pending);\n"
    "$NodeDeallocationOption = taskcompletion;"
)


@pytest.fixture
def service(service_factory):
    """A private service whose clock the test moves (serve --clock-control)."""
    svc = service_factory(extra_args=["--clock-control"])
    svc.start()
    return svc


def node_count(client, pool_id):
    return len(list(client.compute_node.list(pool_id)))


def test_a_pending_tasks_formula_grows_and_shrinks_the_pool(service):
    client = service.client()
    image = pick_linux_image(client)
    pool_id = unique("autoscale")
    client.pool.add(
        batchmodels.PoolAddParameter(
            id=pool_id,
            vm_size="standard_d2_v3",
            virtual_machine_configuration=vm_config(image),
            enable_auto_scale=True,
            auto_scale_formula=FORMULA,
            auto_scale_evaluation_interval=datetime.timedelta(minutes=5),
        )
    )

    def evaluated():
        p = client.pool.get(pool_id)
        return p.auto_scale_run is not None, p if p.auto_scale_run is not None else dump(p)

    pool = wait_until("the first evaluation", evaluated, WAIT)
    assert pool.enable_auto_scale and pool.auto_scale_evaluation_interval == datetime.timedelta(minutes=5)
    assert pool.auto_scale_run.results.startswith("$TargetDedicatedNodes=0;$TargetLowPriorityNodes=0;$NodeDeallocationOption=taskcompletion;pending=0"), dump(pool)
    assert pool.auto_scale_run.error is None
    assert node_count(client, pool_id) == 0

    job_id = unique("job")
    client.job.add(batchmodels.JobAddParameter(id=job_id, pool_info=batchmodels.PoolInformation(pool_id=pool_id)))
    client.task.add_collection(
        job_id,
        [batchmodels.TaskAddParameter(id="t%d" % i, command_line="/bin/sh -c 'sleep 1'") for i in range(5)],
    )
    # Evaluate only computes: five pending tasks give three nodes, the pool stays empty.
    run = client.pool.evaluate_auto_scale(pool_id, FORMULA)
    assert run.results.startswith("$TargetDedicatedNodes=3;"), dump(run)
    assert run.error is None
    assert client.pool.get(pool_id).target_dedicated_nodes == 0

    service.advance_clock("PT5M")
    wait_until("three nodes", lambda: (node_count(client, pool_id) == 3, node_count(client, pool_id)), WAIT)
    pool = client.pool.get(pool_id)
    assert pool.target_dedicated_nodes == 3 and pool.auto_scale_run.results.startswith("$TargetDedicatedNodes=3;"), dump(pool)
    wait_tasks_completed(client, job_id, 5, WAIT)

    service.advance_clock("PT5M")
    wait_until("no nodes", lambda: (node_count(client, pool_id) == 0, node_count(client, pool_id)), WAIT)
    pool = client.pool.get(pool_id)
    assert pool.target_dedicated_nodes == 0 and pool.allocation_state == batchmodels.AllocationState.steady, dump(pool)


def test_enable_evaluate_disable_and_their_errors(service):
    client = service.client()
    image = pick_linux_image(client)
    pool_id = unique("manual")
    add_pool(client, pool_id, image, 0)
    expect_error(409, "OperationInvalidForCurrentState", client.pool.evaluate_auto_scale, pool_id, "$TargetDedicatedNodes=1")
    err = expect_error(400, "AutoScalingFormulaSyntaxError", client.pool.enable_auto_scale, pool_id, auto_scale_formula="$TargetDedicatedNodes = (1")
    assert any(v.key == "Message" and v.value.startswith("Line 1, Col ") for v in err.error.values), http_details(err)
    expect_error(
        400,
        "InvalidPropertyValue",
        client.pool.enable_auto_scale,
        pool_id,
        auto_scale_formula="$TargetDedicatedNodes=1",
        auto_scale_evaluation_interval=datetime.timedelta(minutes=1),
    )
    client.pool.enable_auto_scale(pool_id, auto_scale_formula="$TargetDedicatedNodes=1", auto_scale_evaluation_interval=datetime.timedelta(minutes=6))
    pool = client.pool.get(pool_id)
    assert pool.enable_auto_scale and pool.target_dedicated_nodes == 1, dump(pool)
    assert pool.auto_scale_run.results == "$TargetDedicatedNodes=1;$TargetLowPriorityNodes=0;$NodeDeallocationOption=requeue"
    run = client.pool.evaluate_auto_scale(pool_id, "$TargetDedicatedNodes = avg($CPUPercent.GetSample(TimeInterval_Hour, 90));")
    assert run.error.code == "InsufficientSampleData", dump(run)
    assert run.error.values[0].name == "Message" and "wanted 90%" in run.error.values[0].value
    expect_error(503, "TooManyEnableAutoScaleRequests", client.pool.enable_auto_scale, pool_id, auto_scale_formula="$TargetDedicatedNodes=2")
    service.advance_clock("PT31S")
    client.pool.enable_auto_scale(pool_id, auto_scale_formula="$TargetDedicatedNodes=2")
    assert client.pool.get(pool_id).target_dedicated_nodes == 2
    wait_nodes(client, pool_id, 2, batchmodels.ComputeNodeState.idle, WAIT)
    client.pool.disable_auto_scale(pool_id)
    pool = client.pool.get(pool_id)
    assert not pool.enable_auto_scale and pool.auto_scale_formula is None and pool.auto_scale_run is None, dump(pool)
    assert pool.target_dedicated_nodes == 2
    # Without autoscale the pool is resized by hand again.
    client.pool.resize(pool_id, batchmodels.PoolResizeParameter(target_dedicated_nodes=1))
    wait_until("one node", lambda: (node_count(client, pool_id) == 1, node_count(client, pool_id)), WAIT)
