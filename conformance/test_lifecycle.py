"""The job and task lifecycle through azure-batch 13.0.0 (msrest BatchServiceClient).

Task dependencies (ids, id ranges, exit conditions' dependencyAction), the job action of exit
conditions (onTaskFailure=performExitOptionsJobAction), a job manager task that adds tasks to
its own job with its authentication token, Task Reactivate, the job's maxWallClockTime, and a
multi-instance task on three nodes of a pool with inter-node communication.
Tasks really run as processes on the pool's nodes; every check goes through SDK calls.
"""

import datetime
import os
import sys
import textwrap
import time

import pytest

import azure.batch.models as batchmodels
from azure.batch.models import BatchErrorException

from batchutil import (
    add_pool,
    delete_quietly,
    dump,
    http_details,
    lower,
    pick_linux_image,
    read_task_file,
    unique,
    vm_config,
    wait_nodes,
    wait_task_completed,
    wait_until,
)

# Written against azure-batch 13.0.0's names (api-version 2022-10-01.16.0).
pytestmark = pytest.mark.sdk_versions("13.0.0")

WAIT = 60  # seconds: the machine has 2 cores and may be busy


@pytest.fixture(scope="module")
def pool(batch_client):
    """Two idle nodes with four task slots each (the job manager task runs exclusive on one)."""
    pool_id = unique("life")
    add_pool(batch_client, pool_id, pick_linux_image(batch_client), nodes=2, task_slots_per_node=4)
    wait_nodes(batch_client, pool_id, 2, batchmodels.ComputeNodeState.idle, timeout=WAIT)
    yield pool_id
    delete_quietly(batch_client.pool.delete, pool_id)


@pytest.fixture
def make_job(batch_client, pool):
    """Adds a job on the module's pool (keyword arguments go to JobAddParameter); deleted after
    the test."""
    created = []

    def make(prefix="job", **kwargs):
        job_id = unique(prefix)
        batch_client.job.add(
            batchmodels.JobAddParameter(id=job_id, pool_info=batchmodels.PoolInformation(pool_id=pool), **kwargs)
        )
        created.append(job_id)
        return job_id

    yield make
    for job_id in created:
        delete_quietly(batch_client.job.delete, job_id)


def sh(script):
    """A command line running `script` with /bin/sh (tasks run without a shell)."""
    assert "'" not in script
    return "/bin/sh -c '%s'" % script


def add_task(client, job_id, task_id, command_line, **kwargs):
    client.task.add(job_id, batchmodels.TaskAddParameter(id=task_id, command_line=command_line, **kwargs))


def wait_job_state(client, job_id, state, timeout=WAIT):
    def probe():
        job = client.job.get(job_id)
        return lower(job.state) == lower(state), (job if lower(job.state) == lower(state) else dump(job))

    return wait_until("job %s in state %s" % (job_id, lower(state)), probe, timeout, interval=0.25)


def wait_completed(client, job_id, task_ids, timeout=WAIT):
    """Wait until every task of task_ids is completed; {id: task}."""

    def probe():
        tasks = {t.id: t for t in client.task.list(job_id)}
        done = all(tid in tasks and tasks[tid].state == batchmodels.TaskState.completed for tid in task_ids)
        states = {tid: (lower(tasks[tid].state) if tid in tasks else "missing") for tid in task_ids}
        return done, (tasks if done else states)

    return wait_until("tasks %s of job %s completed" % (sorted(task_ids), job_id), probe, timeout, interval=0.25)


def assert_success(task):
    info = task.execution_info
    assert task.state == batchmodels.TaskState.completed, dump(task)
    assert info is not None and info.exit_code == 0, dump(task)
    assert info.result == batchmodels.TaskExecutionResult.success, dump(task)


def assert_after(dependent, dependency):
    """The dependent started only after its dependency ended."""
    start = dependent.execution_info.start_time
    end = dependency.execution_info.end_time
    assert start is not None and end is not None, (dump(dependent), dump(dependency))
    assert start >= end, "%s started at %s, before %s ended at %s" % (dependent.id, start, dependency.id, end)


def assert_never_started(client, job_id, task_id, seconds=4):
    """For `seconds`, the task stays active and never gets a start time or a node."""
    deadline = time.monotonic() + seconds
    while True:
        t = client.task.get(job_id, task_id)
        assert t.state == batchmodels.TaskState.active, "%s left state active: %s" % (task_id, dump(t))
        assert t.execution_info is None or t.execution_info.start_time is None, dump(t)
        assert t.node_info is None, dump(t)
        if time.monotonic() >= deadline:
            return t
        time.sleep(0.5)


# -- 1. task dependencies -----------------------------------------------------------------------


@pytest.mark.timeout(120)
def test_dependency_chain_and_range_fan_in(batch_client, make_job):
    client = batch_client
    job_id = make_job("deps", uses_task_dependencies=True)
    job = client.job.get(job_id)
    assert job.uses_task_dependencies is True, dump(job)

    # chain a -> b -> c, added in reverse so that the dependents are there first
    add_task(client, job_id, "c", sh("sleep 1"), depends_on=batchmodels.TaskDependencies(task_ids=["b"]))
    add_task(client, job_id, "b", sh("sleep 1"), depends_on=batchmodels.TaskDependencies(task_ids=["a"]))
    add_task(client, job_id, "a", sh("sleep 1"))

    # fan-in over the id range 1..5
    add_task(
        client,
        job_id,
        "fanin",
        sh("echo fanin"),
        depends_on=batchmodels.TaskDependencies(task_id_ranges=[batchmodels.TaskIdRange(start=1, end=5)]),
    )
    for i in range(1, 6):
        add_task(client, job_id, str(i), sh("sleep 1"))

    # while "a" has not ended, "c" must still be waiting
    c = client.task.get(job_id, "c")
    assert c.state == batchmodels.TaskState.active, dump(c)
    assert c.depends_on is not None and c.depends_on.task_ids == ["b"], dump(c)
    fanin = client.task.get(job_id, "fanin")
    assert fanin.depends_on is not None and fanin.depends_on.task_id_ranges, dump(fanin)
    r = fanin.depends_on.task_id_ranges[0]
    assert (r.start, r.end) == (1, 5), dump(fanin)

    ids = ["a", "b", "c", "1", "2", "3", "4", "5", "fanin"]
    tasks = wait_completed(client, job_id, ids)
    for tid in ids:
        assert_success(tasks[tid])
    assert_after(tasks["b"], tasks["a"])
    assert_after(tasks["c"], tasks["b"])
    for i in range(1, 6):
        assert_after(tasks["fanin"], tasks[str(i)])


@pytest.mark.timeout(120)
def test_failed_dependency_satisfy_and_block(batch_client, make_job):
    client = batch_client
    job_id = make_job("depfail", uses_task_dependencies=True)

    satisfy = batchmodels.ExitConditions(
        exit_codes=[
            batchmodels.ExitCodeMapping(code=3, exit_options=batchmodels.ExitOptions(dependency_action="satisfy"))
        ]
    )
    add_task(client, job_id, "exit3", sh("sleep 1; exit 3"), exit_conditions=satisfy)
    add_task(client, job_id, "after3", sh("echo ran"), depends_on=batchmodels.TaskDependencies(task_ids=["exit3"]))
    add_task(client, job_id, "exit2", sh("sleep 1; exit 2"))
    add_task(client, job_id, "after2", sh("echo ran"), depends_on=batchmodels.TaskDependencies(task_ids=["exit2"]))

    t = client.task.get(job_id, "exit3")
    assert t.exit_conditions is not None and t.exit_conditions.exit_codes, dump(t)
    assert t.exit_conditions.exit_codes[0].code == 3, dump(t)
    assert lower(t.exit_conditions.exit_codes[0].exit_options.dependency_action) == "satisfy", dump(t)

    tasks = wait_completed(client, job_id, ["exit3", "after3", "exit2"])
    assert tasks["exit3"].execution_info.exit_code == 3, dump(tasks["exit3"])
    assert tasks["exit3"].execution_info.result == batchmodels.TaskExecutionResult.failure, dump(tasks["exit3"])
    assert_success(tasks["after3"])
    assert_after(tasks["after3"], tasks["exit3"])
    assert tasks["exit2"].execution_info.exit_code == 2, dump(tasks["exit2"])
    assert tasks["exit2"].execution_info.result == batchmodels.TaskExecutionResult.failure, dump(tasks["exit2"])

    # exit 2 without exit conditions: dependencyAction block, "after2" waits for ever
    assert_never_started(client, job_id, "after2", seconds=4)


def test_depends_on_without_uses_task_dependencies_is_400(batch_client, make_job):
    job_id = make_job("nodeps")
    with pytest.raises(BatchErrorException) as exc:
        add_task(batch_client, job_id, "dep", sh("true"), depends_on=batchmodels.TaskDependencies(task_ids=["x"]))
    assert exc.value.response.status_code == 400, http_details(exc.value)
    assert exc.value.error.code == "TaskDependenciesNotSpecifiedOnJob", http_details(exc.value)
    assert not list(batch_client.task.list(job_id))


# -- 2. the job action of exit conditions -------------------------------------------------------


@pytest.mark.timeout(120)
def test_task_failure_terminates_job_with_task_failed(batch_client, make_job):
    client = batch_client
    job_id = make_job("jobaction", on_task_failure="performExitOptionsJobAction")
    job = client.job.get(job_id)
    assert lower(job.on_task_failure) == "performexitoptionsjobaction", dump(job)

    add_task(client, job_id, "fail", sh("exit 1"))
    t = wait_task_completed(client, job_id, "fail", timeout=WAIT)
    assert t.execution_info.exit_code == 1, dump(t)
    assert t.execution_info.result == batchmodels.TaskExecutionResult.failure, dump(t)

    job = wait_job_state(client, job_id, batchmodels.JobState.completed)
    assert job.execution_info is not None, dump(job)
    assert job.execution_info.terminate_reason == "TaskFailed", dump(job)
    assert job.execution_info.end_time is not None, dump(job)


@pytest.mark.timeout(120)
def test_exit_code_with_job_action_none_leaves_job_active(batch_client, make_job):
    client = batch_client
    job_id = make_job("jobnone", on_task_failure="performExitOptionsJobAction")
    none5 = batchmodels.ExitConditions(
        exit_codes=[batchmodels.ExitCodeMapping(code=5, exit_options=batchmodels.ExitOptions(job_action="none"))]
    )
    add_task(client, job_id, "exit5", sh("exit 5"), exit_conditions=none5)
    t = wait_task_completed(client, job_id, "exit5", timeout=WAIT)
    assert t.execution_info.exit_code == 5, dump(t)
    assert t.execution_info.result == batchmodels.TaskExecutionResult.failure, dump(t)

    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        job = client.job.get(job_id)
        assert job.state == batchmodels.JobState.active, dump(job)
        time.sleep(0.5)
    assert job.execution_info is None or job.execution_info.terminate_reason is None, dump(job)


# -- 3. a job manager task that adds tasks with its authentication token -------------------------

JM_SCRIPT = textwrap.dedent(
    '''
    import os, sys, time
    from msrest.authentication import BasicTokenAuthentication
    from azure.batch import BatchServiceClient
    import azure.batch.models as batchmodels
    from azure.batch.models import BatchErrorException

    token = os.environ["AZ_BATCH_AUTHENTICATION_TOKEN"]
    url = os.environ["AZ_BATCH_ACCOUNT_URL"]
    job_id = os.environ["AZ_BATCH_JOB_ID"]
    print("account url %s, job %s" % (url, job_id), flush=True)
    client = BatchServiceClient(BasicTokenAuthentication({"access_token": token}), batch_url=url)
    client.config.retry_policy.retries = 0
    client.config.connection.timeout = 30

    ids = ["work-%d" % i for i in range(3)]
    for tid in ids:
        client.task.add(job_id, batchmodels.TaskAddParameter(
            id=tid, command_line="/bin/sh -c 'echo done $AZ_BATCH_TASK_ID'"))
    print("added %s" % ids, flush=True)

    deadline = time.monotonic() + 45
    while True:
        tasks = {t.id: t for t in client.task.list(job_id)}
        states = {tid: str(tasks[tid].state) if tid in tasks else "missing" for tid in ids}
        if all(tid in tasks and tasks[tid].state == batchmodels.TaskState.completed for tid in ids):
            break
        if time.monotonic() > deadline:
            print("tasks did not complete: %s" % states, flush=True)
            sys.exit(10)
        time.sleep(0.3)
    print("completed: %s" % states, flush=True)

    try:
        pools = list(client.pool.list())
    except BatchErrorException as e:
        status = e.response.status_code
        code = e.error.code if e.error is not None else None
        print("pool.list: %s %s" % (status, code), flush=True)
        if status != 403:
            sys.exit(11)
    else:
        print("pool.list outside the job succeeded with the task token: %s" % [p.id for p in pools], flush=True)
        sys.exit(12)
    print("ok", flush=True)
    '''
)


@pytest.mark.timeout(150)
def test_job_manager_adds_tasks_with_its_token(batch_client, pool, make_job, tmp_path):
    client = batch_client
    script = tmp_path / "jm.py"
    script.write_text(JM_SCRIPT)
    jm = batchmodels.JobManagerTask(
        id="jm",
        command_line="%s %s" % (os.path.abspath(sys.executable), script),
        authentication_token_settings=batchmodels.AuthenticationTokenSettings(access=["job"]),
        kill_job_on_completion=True,
    )
    job_id = make_job("jm", job_manager_task=jm)

    # Get Job echoes the job manager task
    job = client.job.get(job_id)
    got = job.job_manager_task
    assert got is not None, dump(job)
    assert got.id == "jm" and got.command_line == jm.command_line, dump(job)
    assert got.kill_job_on_completion is True, dump(job)
    assert got.authentication_token_settings is not None, dump(job)
    assert [lower(a) for a in got.authentication_token_settings.access] == ["job"], dump(job)

    # the job manager task is a task of the job
    ids = [t.id for t in client.task.list(job_id)]
    assert "jm" in ids, ids

    # the job manager task is scheduled (the pool has two idle nodes)
    def jm_scheduled():
        t = client.task.get(job_id, "jm")
        nodes = [(n.id, lower(n.state), n.running_tasks_count) for n in client.compute_node.list(pool)]
        return t.state != batchmodels.TaskState.active, "jm: %s; nodes: %s" % (dump(t), nodes)

    wait_until("the job manager task of %s to leave state active" % job_id, jm_scheduled, WAIT, interval=0.25)

    try:
        tasks = wait_completed(client, job_id, ["jm", "work-0", "work-1", "work-2"], timeout=WAIT)
    finally:
        try:
            out = read_task_file(client, job_id, "jm", "stdout.txt").decode(errors="replace")
            err = read_task_file(client, job_id, "jm", "stderr.txt").decode(errors="replace")
            print("jm stdout:\n%s\njm stderr:\n%s" % (out, err))
        except Exception as e:  # only diagnostics
            print("could not read the job manager's output: %r" % e)
    jm_task = tasks["jm"]
    jm_out = read_task_file(client, job_id, "jm", "stdout.txt").decode(errors="replace")
    jm_err = read_task_file(client, job_id, "jm", "stderr.txt").decode(errors="replace")
    assert jm_task.execution_info.exit_code == 0, "%s\nstdout:\n%s\nstderr:\n%s" % (dump(jm_task), jm_out, jm_err)
    assert_success(jm_task)
    assert "pool.list: 403" in jm_out, jm_out
    for tid in ["work-0", "work-1", "work-2"]:
        assert_success(tasks[tid])
        assert read_task_file(client, job_id, tid, "stdout.txt") == ("done %s\n" % tid).encode()
        # the job manager waited for them
        assert jm_task.execution_info.end_time >= tasks[tid].execution_info.end_time, (dump(jm_task), dump(tasks[tid]))

    job = wait_job_state(client, job_id, batchmodels.JobState.completed)
    assert job.execution_info.terminate_reason == "JMComplete", dump(job)
    assert job.job_manager_task is not None and job.job_manager_task.id == "jm", dump(job)


# -- 4. Task Reactivate -------------------------------------------------------------------------


@pytest.mark.timeout(120)
def test_reactivate_failed_task_runs_again(batch_client, make_job, tmp_path):
    client = batch_client
    job_id = make_job("react")
    # fails the first time (leaving a marker), succeeds the second; the marker is in the test's
    # directory so that the second run sees it whichever node it lands on
    marker = tmp_path / "ran-once"
    cmd = sh('if [ -e "%s" ]; then echo second; exit 0; fi; touch "%s"; echo first; exit 1' % (marker, marker))
    add_task(client, job_id, "flaky", cmd, constraints=batchmodels.TaskConstraints(max_task_retry_count=0))
    t = wait_task_completed(client, job_id, "flaky", timeout=WAIT)
    assert t.execution_info.exit_code == 1, dump(t)
    assert t.execution_info.result == batchmodels.TaskExecutionResult.failure, dump(t)
    assert t.execution_info.retry_count == 0, dump(t)
    first_end = t.execution_info.end_time

    client.task.reactivate(job_id, "flaky")
    t = client.task.get(job_id, "flaky")
    assert t.state in (batchmodels.TaskState.active, batchmodels.TaskState.preparing, batchmodels.TaskState.running,
                       batchmodels.TaskState.completed), dump(t)

    def second_run_done():
        t = client.task.get(job_id, "flaky")
        done = t.state == batchmodels.TaskState.completed and t.execution_info.exit_code == 0
        return done, (t if done else dump(t))

    t = wait_until("flaky to complete again", second_run_done, WAIT, interval=0.25)
    assert_success(t)
    assert t.execution_info.retry_count == 0, dump(t)
    assert t.execution_info.failure_info is None, dump(t)
    assert t.execution_info.start_time >= first_end, dump(t)
    assert read_task_file(client, job_id, "flaky", "stdout.txt") == b"second\n"

    # only a failed task can be reactivated
    with pytest.raises(BatchErrorException) as exc:
        client.task.reactivate(job_id, "flaky")
    assert exc.value.response.status_code == 409, http_details(exc.value)
    # The code is recorded, not asserted: Azure documents the 409 but no code for this case
    # (openbatch answers TaskCompletedSuccessfully, which BatchErrorCodeStrings does not list).
    assert exc.value.error is not None and exc.value.error.code, http_details(exc.value)
    print("reactivating a successful task: %s %s" % (exc.value.response.status_code, exc.value.error.code))


# -- 5. the job's maxWallClockTime --------------------------------------------------------------


@pytest.mark.timeout(120)
def test_job_max_wall_clock_time_terminates_job(batch_client, make_job):
    client = batch_client
    started = time.monotonic()
    job_id = make_job("wall", constraints=batchmodels.JobConstraints(max_wall_clock_time=datetime.timedelta(seconds=3)))
    add_task(client, job_id, "sleeper", "/bin/sleep 60")

    job = wait_job_state(client, job_id, batchmodels.JobState.completed, timeout=WAIT)
    elapsed = time.monotonic() - started
    assert job.execution_info.terminate_reason == "MaxWallClockTimeExpiry", dump(job)
    assert job.constraints is not None and job.constraints.max_wall_clock_time == datetime.timedelta(seconds=3), dump(job)
    assert 3 <= elapsed <= 10, "job completed %.1f s after it was added: %s" % (elapsed, dump(job))

    t = wait_task_completed(client, job_id, "sleeper", timeout=10)
    info = t.execution_info
    assert info.result == batchmodels.TaskExecutionResult.failure, dump(t)
    assert info.failure_info is not None and info.failure_info.code == "TaskEnded", dump(t)
    assert info.end_time is not None and info.end_time <= job.execution_info.end_time, dump(t)


# -- 6. a multi-instance task on three nodes -----------------------------------------------------


@pytest.mark.timeout(120)
def test_multi_instance_task_on_three_nodes(batch_client):
    client = batch_client
    pool_id = unique("mpi")
    client.pool.add(
        batchmodels.PoolAddParameter(
            id=pool_id,
            vm_size="standard_d2_v3",
            virtual_machine_configuration=vm_config(pick_linux_image(client)),
            target_dedicated_nodes=3,
            enable_inter_node_communication=True,
        )
    )
    job_id = unique("mpi")
    try:
        nodes = wait_nodes(client, pool_id, 3, batchmodels.ComputeNodeState.idle, timeout=WAIT)
        client.job.add(batchmodels.JobAddParameter(id=job_id, pool_info=batchmodels.PoolInformation(pool_id=pool_id)))
        coordination = sh("echo $AZ_BATCH_NODE_ID > $AZ_BATCH_TASK_SHARED_DIR/$AZ_BATCH_NODE_ID")
        app = sh("echo hosts=$AZ_BATCH_HOST_LIST; echo master=$AZ_BATCH_IS_CURRENT_NODE_MASTER; cat $AZ_BATCH_TASK_SHARED_DIR/*")
        add_task(
            client,
            job_id,
            "mi",
            app,
            multi_instance_settings=batchmodels.MultiInstanceSettings(
                number_of_instances=3, coordination_command_line=coordination
            ),
        )
        t = wait_task_completed(client, job_id, "mi", timeout=WAIT)
        assert_success(t)
        assert t.multi_instance_settings.number_of_instances == 3, dump(t)
        out = read_task_file(client, job_id, "mi", "stdout.txt").decode().splitlines()
        assert "master=true" in out, out
        hosts = next(l for l in out if l.startswith("hosts=")).split("=", 1)[1].split(",")
        assert len(hosts) == 3, out
        ran_on = {l for l in out if "=" not in l}
        assert ran_on == {n.id for n in nodes}, out

        subtasks = list(client.task.list_subtasks(job_id, "mi").value)
        assert sorted(s.id for s in subtasks) == [1, 2], [dump(s) for s in subtasks]
        assert all(s.state == batchmodels.SubtaskState.completed and s.exit_code == 0 for s in subtasks), [
            dump(s) for s in subtasks
        ]
        sub_nodes = {s.node_info.node_id for s in subtasks}
        assert len(sub_nodes) == 2 and t.node_info.node_id not in sub_nodes, [dump(s) for s in subtasks]
    finally:
        delete_quietly(client.job.delete, job_id)
        delete_quietly(client.pool.delete, pool_id)
