"""The end-to-end scenario through azure-batch 15.1.0, the TypeSpec `azure.batch.BatchClient`.

15.1.0 speaks api-version `2025-06-01` (date only), signs query names as sent (`timeOut`),
sends durations as `PT02H00M00S`, follows `odata.nextLink` with its own api-version and polls
after the 202 of its `begin_*` operations (see ../../../shared/azure-batch-wire/newer/diff.md,
section 6). Everything here goes through the unmodified client.

Scenario: list_supported_images → the "batch.node.ubuntu 22.04" image → pool of 2 nodes with a
start task and 2 slots per node → pool_exists, update_pool with If-Match (current and stale ETag) → wait for 2 idle nodes (start task completed, its file read
through download_node_file) → job with constraints → one task (create_task), 10 tasks
(create_tasks), 2 tasks (create_task_collection) and a task that exits 3 → wait for completion
(list_tasks) → exit codes, results, stdout.txt of each through download_task_file and
get_task_file_properties → get_job_task_counts → list_tasks with an OData filter, paging with
max_results → 404 → begin_resize_pool to 1 node → begin_delete_job, begin_delete_pool.
"""

import datetime

import pytest
from azure.core import MatchConditions
from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError

import azure.batch.models as bm

from batchclientutil import API_VERSION, UBUNTU_SKU, ubuntu_2204, vm_configuration
from batchutil import dump, lower, unique, wait_until

START_TASK = '/bin/sh -c "echo ok > $AZ_BATCH_NODE_SHARED_DIR/ok.txt"'
ECHO_TASK = '/bin/sh -c "echo $AZ_BATCH_TASK_ID"'
FAIL_TASK = '/bin/sh -c "echo going to fail; exit 3"'
POLL = 1  # polling_interval of the begin_* pollers, seconds (the client's default is 5)




@pytest.mark.timeout(180)
def test_batch_client_scenario(openbatch, client, http_trace):
    pool_id = unique("bc-pool")
    job_id = unique("bc-job")
    try:
        run_scenario(client, pool_id, job_id)
        sent = {v for (_, _, v) in http_trace.requests}
        assert sent == {API_VERSION}, "api-versions sent: %s" % sent
    finally:
        for fn, rid in ((client.begin_delete_job, job_id), (client.begin_delete_pool, pool_id)):
            try:
                fn(rid, polling_interval=POLL).result()
            except Exception:
                pass


def run_scenario(client, pool_id, job_id):
    # -- image and pool
    image = ubuntu_2204(client)
    client.create_pool(
        bm.BatchPoolCreateOptions(
            id=pool_id,
            vm_size="standard_d2_v3",
            virtual_machine_configuration=vm_configuration(image),
            target_dedicated_nodes=2,
            task_slots_per_node=2,
            start_task=bm.BatchStartTask(command_line=START_TASK, wait_for_success=True),
        )
    )
    # service_timeout is sent as `timeOut` and signed as sent
    pool = client.get_pool(pool_id, service_timeout=30)
    assert pool.id == pool_id, dump(pool)
    assert pool.target_dedicated_nodes == 2 and pool.task_slots_per_node == 2, dump(pool)
    assert pool.virtual_machine_configuration.node_agent_sku_id == UBUNTU_SKU, dump(pool)
    assert pool.start_task.command_line == START_TASK and pool.start_task.wait_for_success is True, dump(pool)
    assert client.pool_exists(pool_id) is True  # HEAD

    # conditional update (If-Match): the current ETag wins, a stale one gets 412 ConditionNotMet
    client.update_pool(
        pool_id,
        bm.BatchPoolUpdateOptions(metadata=[bm.BatchMetadataItem(name="owner", value="conformance")]),
        etag=pool.etag,
        match_condition=MatchConditions.IfNotModified,
    )
    with pytest.raises(ResourceModifiedError) as exc:
        client.update_pool(
            pool_id,
            bm.BatchPoolUpdateOptions(metadata=[bm.BatchMetadataItem(name="owner", value="stale")]),
            etag=pool.etag,
            match_condition=MatchConditions.IfNotModified,
        )
    assert exc.value.status_code == 412 and exc.value.error.code == "ConditionNotMet", exc.value
    pool = client.get_pool(pool_id)
    assert [(m.name, m.value) for m in pool.metadata] == [("owner", "conformance")], dump(pool)

    def idle_nodes():
        nodes = list(client.list_nodes(pool_id, service_timeout=30))
        ok = len(nodes) == 2 and all(lower(n.state) == "idle" for n in nodes)
        return ok, (nodes if ok else [(n.id, n.state) for n in nodes])

    nodes = wait_until("2 idle nodes in pool %s" % pool_id, idle_nodes, timeout=60, interval=0.3)
    for node in nodes:
        info = node.start_task_info
        assert info is not None and lower(info.state) == "completed", dump(node)
        assert info.exit_code == 0 and lower(info.result) == "success", dump(node)
        data = b"".join(client.download_node_file(pool_id, node.id, "shared/ok.txt"))
        assert data == b"ok\n", "shared/ok.txt on %s: %r" % (node.id, data)

    # -- job (durations go out as P1DT00H15M00S) and tasks
    client.create_job(
        bm.BatchJobCreateOptions(
            id=job_id,
            pool_info=bm.BatchPoolInfo(pool_id=pool_id),
            constraints=bm.BatchJobConstraints(
                max_wall_clock_time=datetime.timedelta(days=1, minutes=15), max_task_retry_count=0
            ),
        )
    )
    job = client.get_job(job_id)
    assert job.pool_info.pool_id == pool_id, dump(job)
    assert lower(job.state) == "active", dump(job)
    assert job.constraints.max_wall_clock_time == datetime.timedelta(days=1, minutes=15), dump(job)

    client.create_task(
        job_id,
        bm.BatchTaskCreateOptions(
            id="single",
            command_line=ECHO_TASK,
            user_identity=bm.UserIdentity(auto_user=bm.AutoUserSpecification(elevation_level=bm.ElevationLevel.NON_ADMIN)),
            constraints=bm.BatchTaskConstraints(max_wall_clock_time=datetime.timedelta(hours=2), max_task_retry_count=0),
        ),
    )
    single = client.get_task(job_id, "single")
    assert single.command_line == ECHO_TASK, dump(single)
    assert single.constraints.max_wall_clock_time == datetime.timedelta(hours=2), dump(single)

    many = ["echo-%02d" % i for i in range(10)]
    result = client.create_tasks(job_id, [bm.BatchTaskCreateOptions(id=t, command_line=ECHO_TASK) for t in many])
    assert sorted(r.task_id for r in result.result_values) == many, dump(result)
    assert all(lower(r.status) == "success" for r in result.result_values), dump(result)

    group = ["group-a", "group-b"]
    result = client.create_task_collection(
        job_id, bm.BatchTaskGroup(task_values=[bm.BatchTaskCreateOptions(id=t, command_line=ECHO_TASK) for t in group])
    )
    assert sorted(r.task_id for r in result.result_values) == group, dump(result)
    assert all(lower(r.status) == "success" for r in result.result_values), dump(result)

    client.create_task(job_id, bm.BatchTaskCreateOptions(id="exit3", command_line=FAIL_TASK))

    echo_ids = sorted(["single"] + many + group)
    all_ids = sorted(echo_ids + ["exit3"])

    def completed():
        tasks = list(client.list_tasks(job_id))
        ok = sorted(t.id for t in tasks) == all_ids and all(lower(t.state) == "completed" for t in tasks)
        return ok, (tasks if ok else sorted((t.id, t.state) for t in tasks))

    tasks = wait_until("%d completed tasks in %s" % (len(all_ids), job_id), completed, timeout=60, interval=0.3)
    by_id = {t.id: t for t in tasks}

    # -- exit codes, results, stdout.txt
    for tid in echo_ids:
        t = by_id[tid]
        info = t.execution_info
        assert info is not None and info.exit_code == 0, dump(t)
        assert lower(info.result) == "success" and info.failure_info is None, dump(t)
        assert t.node_info is not None and t.node_info.pool_id == pool_id, dump(t)
        out = b"".join(client.download_task_file(job_id, tid, "stdout.txt"))
        assert out == ("%s\n" % tid).encode(), "stdout.txt of %s: %r" % (tid, out)

    failed = by_id["exit3"]
    info = failed.execution_info
    assert info.exit_code == 3, dump(failed)
    assert lower(info.result) == "failure", dump(failed)
    assert info.failure_info is not None and lower(info.failure_info.category) == "usererror", dump(failed)
    out = b"".join(client.download_task_file(job_id, "exit3", "stdout.txt"))
    assert out == b"going to fail\n", out
    props = client.get_task_file_properties(job_id, "exit3", "stdout.txt")
    assert props.content_length == len(out) and props.is_directory is False, vars(props)
    files = {f.name for f in client.list_task_files(job_id, "exit3")}
    assert {"stdout.txt", "stderr.txt"} <= files, files

    # -- task counts
    want = {"active": 0, "running": 0, "completed": len(all_ids), "succeeded": len(echo_ids), "failed": 1}

    def counts():
        c = client.get_job_task_counts(job_id)
        tc = c.task_counts
        got = {k: getattr(tc, k) for k in want}
        return got == want and c.task_slot_counts is not None and c.task_slot_counts.completed == len(all_ids), dump(c)

    wait_until("task counts %s of %s" % (want, job_id), counts, timeout=10, interval=0.3)

    # -- OData $filter (filter=), $select, and paging through odata.nextLink (max_results)
    failing = list(client.list_tasks(job_id, filter="executionInfo/exitCode eq 3"))
    assert [t.id for t in failing] == ["exit3"], [dump(t) for t in failing]
    echo = list(client.list_tasks(job_id, filter="startswith(id, 'echo-') and executionInfo/result eq 'success'"))
    assert sorted(t.id for t in echo) == many, [t.id for t in echo]
    slim = list(client.list_tasks(job_id, filter="id eq 'single'", select=["id", "state"]))
    assert [(t.id, lower(t.state), t.command_line) for t in slim] == [("single", "completed", None)], [dump(t) for t in slim]
    paged = list(client.list_tasks(job_id, max_results=5, service_timeout=30))
    assert sorted(t.id for t in paged) == all_ids, [t.id for t in paged]
    jobs = list(client.list_jobs(filter="id eq '%s'" % job_id))
    assert [j.id for j in jobs] == [job_id], [dump(j) for j in jobs]

    # -- a missing job: 404 with the Batch error code
    with pytest.raises(ResourceNotFoundError) as exc:
        client.get_job(unique("no-such-job"))
    assert exc.value.status_code == 404
    assert exc.value.error is not None and exc.value.error.code == "JobNotFound", exc.value

    # -- resize to one node (the poller waits until allocationState is steady)
    poller = client.begin_resize_pool(pool_id, bm.BatchPoolResizeOptions(target_dedicated_nodes=1), polling_interval=POLL)
    poller.result(timeout=60)
    assert poller.done()
    pool = client.get_pool(pool_id)
    assert lower(pool.allocation_state) == "steady", dump(pool)
    assert pool.target_dedicated_nodes == 1 and pool.current_dedicated_nodes == 1, dump(pool)
    assert len(list(client.list_nodes(pool_id))) == 1

    # -- delete job and pool (the pollers wait while the state is `deleting`)
    client.begin_delete_job(job_id, polling_interval=POLL).result(timeout=60)
    with pytest.raises(ResourceNotFoundError) as exc:
        client.get_job(job_id)
    assert exc.value.error is not None and exc.value.error.code == "JobNotFound", exc.value

    client.begin_delete_pool(pool_id, polling_interval=POLL).result(timeout=60)
    with pytest.raises(ResourceNotFoundError) as exc:
        client.get_pool(pool_id)
    assert exc.value.error is not None and exc.value.error.code == "PoolNotFound", exc.value
    assert pool_id not in {p.id for p in client.list_pools()}
    # 15.1.x turns the 404 of HEAD into an exception (its error policy); older clients return False
    with pytest.raises(ResourceNotFoundError):
        client.pool_exists(pool_id)
