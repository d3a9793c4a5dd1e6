"""Job schedules through azure-batch 13.0.0 (msrest BatchServiceClient).

A schedule recurring every minute creates `<scheduleId>:job-<n>` jobs on auto pools; the
service runs with `serve --clock-control`, so instead of waiting a real minute the tests move
the service clock on (Service.advance_clock, which returns once the scheduler acted on the new
time). Everything else goes through the SDK: the jobs' job manager tasks really run on the auto
pools' nodes and their output is read with file.get_from_task while they run (each waits for a
marker file the test creates, so that its node is still there: a `job` auto pool goes, node
and files, as soon as its job completed), and the schedule's operations (Add, Get, Exists,
List with $filter, Patch, Update, Disable, Enable, Terminate, Delete, List Jobs From Job
Schedule) and errors are checked as the SDK surfaces them.

The real clock runs on as well: a recurrence interval of one minute means that every check
which depends on no further job being due has to happen within a minute of real time after
the clock was last moved; the tests take well under that.
"""

import datetime
import time

import pytest

import azure.batch.models as batchmodels

from batchutil import (
    dump,
    expect_error,
    http_details,
    lower,
    pick_linux_image,
    read_task_file,
    unique,
    vm_config,
    wait_until,
)

# Written against azure-batch 13.0.0's names (api-version 2022-10-01.16.0).
pytestmark = pytest.mark.sdk_versions("13.0.0")

WAIT = 45  # seconds for one job (auto pool allocation, node start, job manager task)
ONE_MINUTE = datetime.timedelta(minutes=1)
MANAGER_ID = "manager"


@pytest.fixture
def service(service_factory):
    """A private service whose clock the test moves (serve --clock-control)."""
    svc = service_factory(extra_args=["--clock-control"])
    svc.start()
    return svc


def service_now(svc):
    """The service clock (an aware UTC datetime)."""
    return datetime.datetime.fromisoformat(svc.clock()["now"])


def sh(script):
    """A command line running `script` with /bin/sh (tasks run without a shell)."""
    assert "'" not in script
    return "/bin/sh -c '%s'" % script


class Manager:
    """The job manager task of the schedules' jobs: it writes its job's id to stdout, then waits
    until the test releases it (a marker file in the test's directory, named after the job) and
    exits 0, which completes its job (killJobOnCompletion). While it waits, its output can be
    read from its node; once the job completed, an auto pool of the job is deleted with its
    node and its files."""

    def __init__(self, directory):
        self.directory = directory

    def task(self):
        script = (
            'echo "manager of $AZ_BATCH_JOB_ID"; i=0; '
            'while [ ! -e "%s/release-$AZ_BATCH_JOB_ID" ] && [ $i -lt 1200 ]; do sleep 0.1; i=$((i+1)); done'
            % self.directory
        )
        return batchmodels.JobManagerTask(id=MANAGER_ID, command_line=sh(script))

    def release(self, job_id):
        (self.directory / ("release-%s" % job_id)).touch()


@pytest.fixture
def manager(tmp_path):
    return Manager(tmp_path)


def auto_pool_info(image, lifetime, prefix):
    """An auto pool of one dedicated Linux node, kept for `lifetime` ("job" or "jobschedule")."""
    return batchmodels.PoolInformation(
        auto_pool_specification=batchmodels.AutoPoolSpecification(
            auto_pool_id_prefix=prefix,
            pool_lifetime_option=lifetime,
            keep_alive=False,
            pool=batchmodels.PoolSpecification(
                vm_size="standard_d2_v3",
                virtual_machine_configuration=vm_config(image),
                target_dedicated_nodes=1,
            ),
        )
    )


def job_spec(image, lifetime, prefix, manager):
    return batchmodels.JobSpecification(pool_info=auto_pool_info(image, lifetime, prefix), job_manager_task=manager.task())


def job_ids(client, schedule_id):
    return sorted(j.id for j in client.job.list_from_job_schedule(schedule_id))


def assert_close(got, want, what, slack=datetime.timedelta(seconds=1)):
    assert got is not None and abs(got - want) <= slack, "%s: got %s, want %s" % (what, got, want)


def run_scheduled_job(client, job_id, manager):
    """Sees a schedule's job run its job manager task on its pool (reading the task's stdout
    while it runs), releases the task and waits until the job completed through it; returns
    (job, pool id)."""

    def manager_running():
        task = client.task.get(job_id, MANAGER_ID)
        if task.state != batchmodels.TaskState.running:
            return False, dump(task)
        out = read_task_file(client, job_id, MANAGER_ID, "stdout.txt")
        return out == ("manager of %s\n" % job_id).encode(), (task, out)

    task, _ = wait_until("job manager task of %s running, its output written" % job_id, manager_running, WAIT, interval=0.25)
    job = client.job.get(job_id)
    assert job.state == batchmodels.JobState.active, dump(job)
    pool_id = job.execution_info.pool_id
    assert pool_id and task.node_info is not None and task.node_info.pool_id == pool_id, (dump(job), dump(task))
    assert client.pool.exists(pool_id) is True
    node = client.compute_node.get(pool_id, task.node_info.node_id)
    assert node.running_tasks_count == 1, dump(node)

    manager.release(job_id)

    def completed():
        job = client.job.get(job_id)
        done = job.state == batchmodels.JobState.completed
        return done, (job if done else dump(job))

    job = wait_until("job %s to complete" % job_id, completed, WAIT, interval=0.25)
    assert job.job_manager_task is not None and job.job_manager_task.id == MANAGER_ID, dump(job)
    assert job.execution_info.terminate_reason == "JMComplete", dump(job)
    assert job.execution_info.pool_id == pool_id, dump(job)
    task = client.task.get(job_id, MANAGER_ID)
    assert task.state == batchmodels.TaskState.completed, dump(task)
    assert task.execution_info.exit_code == 0, dump(task)
    assert task.execution_info.result == batchmodels.TaskExecutionResult.success, dump(task)
    return job, pool_id


def wait_pool_gone(client, pool_id):
    def gone():
        if not client.pool.exists(pool_id):
            return True, None
        return False, dump(client.pool.get(pool_id))

    wait_until("auto pool %s to be deleted" % pool_id, gone, WAIT, interval=0.25)


def wait_schedule_gone(client, schedule_id):
    def gone():
        if not client.job_schedule.exists(schedule_id):
            return True, None
        return False, dump(client.job_schedule.get(schedule_id))

    wait_until("job schedule %s to be deleted" % schedule_id, gone, WAIT, interval=0.25)


def assert_job_gone(client, job_id):
    expect_error(404, "JobNotFound", client.job.get, job_id)


# -- 1. every minute, a job on an auto pool of its own --------------------------------------------


@pytest.mark.timeout(150)
def test_schedule_every_minute_runs_a_job_per_recurrence(service, manager):
    client = service.client()
    image = pick_linux_image(client)
    sid = unique("every-minute")
    prefix = unique("sched")
    client.job_schedule.add(
        batchmodels.JobScheduleAddParameter(
            id=sid,
            display_name="every minute",
            schedule=batchmodels.Schedule(recurrence_interval=ONE_MINUTE),
            job_specification=job_spec(image, "job", prefix, manager),
        )
    )
    job1, job2 = "%s:job-1" % sid, "%s:job-2" % sid

    # Due at once: job-1 is there when Add answered.
    s = client.job_schedule.get(sid)
    assert s.state == batchmodels.JobScheduleState.active, dump(s)
    assert s.display_name == "every minute", dump(s)
    assert s.schedule.recurrence_interval == ONE_MINUTE, dump(s)
    assert s.schedule.do_not_run_until is None and s.schedule.start_window is None, dump(s)
    spec = s.job_specification
    assert spec.job_manager_task is not None and spec.job_manager_task.id == MANAGER_ID, dump(s)
    auto = spec.pool_info.auto_pool_specification
    assert auto is not None and lower(auto.pool_lifetime_option) == "job", dump(s)
    assert auto.auto_pool_id_prefix == prefix and auto.pool.target_dedicated_nodes == 1, dump(s)
    info = s.execution_info
    assert info.recent_job is not None and info.recent_job.id == job1, dump(s)
    assert info.recent_job.url.endswith("/jobs/%s" % job1), dump(s)
    first_next = info.next_run_time
    assert_close(first_next, s.creation_time + ONE_MINUTE, "next run time of a new schedule")
    assert info.end_time is None, dump(s)

    job, pool1 = run_scheduled_job(client, job1, manager)
    assert pool1.startswith(prefix), dump(job)
    assert job.job_manager_task.command_line == manager.task().command_line, dump(job)
    wait_pool_gone(client, pool1)
    # The task's files went with the pool's node: an error at once (not a hang until a timeout).
    started = time.monotonic()
    expect_error(409, "NodeNotReady", client.file.get_from_task, job1, MANAGER_ID, "stdout.txt")
    assert time.monotonic() - started < 10, "the file request took %.1f s" % (time.monotonic() - started)

    # Nothing more until the minute is over.
    now = service_now(service)
    assert now < first_next, "job-1 took longer than the recurrence interval of real time (now %s, next run %s)" % (now, first_next)
    assert job_ids(client, sid) == [job1]

    moved = datetime.datetime.fromisoformat(service.advance_clock("PT1M")["now"])
    assert moved >= now + ONE_MINUTE, (now, moved)

    # The scheduler acted before the clock answered: job-2 exists now.
    job = client.job.get(job2)
    assert job.job_manager_task is not None and job.job_manager_task.id == MANAGER_ID, dump(job)
    s = client.job_schedule.get(sid)
    assert s.execution_info.recent_job.id == job2, dump(s)
    assert s.execution_info.next_run_time == first_next + ONE_MINUTE, dump(s)

    job, pool2 = run_scheduled_job(client, job2, manager)
    assert pool2.startswith(prefix) and pool2 != pool1, (pool1, dump(job))
    wait_pool_gone(client, pool2)

    assert job_ids(client, sid) == [job1, job2]
    for j in client.job.list_from_job_schedule(sid):
        assert j.state == batchmodels.JobState.completed, dump(j)
    s = client.job_schedule.get(sid)
    assert s.state == batchmodels.JobScheduleState.active, dump(s)
    assert s.execution_info.recent_job.id == job2, dump(s)
    assert s.execution_info.next_run_time == first_next + ONE_MINUTE, dump(s)
    assert not [p.id for p in client.pool.list() if p.id.startswith(prefix)]

    # Terminate: the schedule completes, no next run.
    client.job_schedule.terminate(sid)

    def completed():
        s = client.job_schedule.get(sid)
        return s.state == batchmodels.JobScheduleState.completed, (s if s.state == batchmodels.JobScheduleState.completed else dump(s))

    s = wait_until("schedule %s to complete" % sid, completed, WAIT, interval=0.25)
    assert s.execution_info.next_run_time is None, dump(s)
    assert s.execution_info.end_time is not None, dump(s)
    assert s.execution_info.recent_job.id == job2, dump(s)
    assert job_ids(client, sid) == [job1, job2]
    expect_error(409, "JobScheduleCompleted", client.job_schedule.disable, sid)

    # Delete: the schedule and its jobs go.
    client.job_schedule.delete(sid)
    wait_schedule_gone(client, sid)
    assert client.job_schedule.exists(sid) is False
    assert_job_gone(client, job1)
    assert_job_gone(client, job2)
    assert not [j.id for j in client.job.list() if j.id.startswith(sid + ":")]
    assert sid not in [x.id for x in client.job_schedule.list()]


# -- 2. operations, a pool for the whole schedule, doNotRunUntil, errors --------------------------


@pytest.mark.timeout(150)
def test_schedule_operations_shared_pool_and_errors(service, manager):
    client = service.client()
    image = pick_linux_image(client)

    # errors before anything exists
    missing = unique("missing")
    err = expect_error(404, "JobScheduleNotFound", client.job_schedule.get, missing)
    assert client.job_schedule.exists(missing) is False
    err = expect_error(
        400,
        "InvalidPropertyValue",
        client.job_schedule.add,
        batchmodels.JobScheduleAddParameter(
            id=unique("too-often"),
            schedule=batchmodels.Schedule(recurrence_interval=datetime.timedelta(seconds=30)),
            job_specification=job_spec(image, "job", "x", manager),
        ),
    )
    values = {v.key: v.value for v in (err.error.values or [])}
    assert "recurrenceInterval" in (values.get("PropertyName") or ""), http_details(err)
    assert not list(client.job_schedule.list())

    # a schedule that must not run for ten minutes, with a pool for all its jobs
    sid = unique("later")
    prefix = unique("shared")
    now = service_now(service)
    not_until = now + datetime.timedelta(minutes=10)
    add = batchmodels.JobScheduleAddParameter(
        id=sid,
        schedule=batchmodels.Schedule(do_not_run_until=not_until, recurrence_interval=ONE_MINUTE),
        job_specification=job_spec(image, "jobschedule", prefix, manager),
        metadata=[batchmodels.MetadataItem(name="stage", value="added")],
    )
    client.job_schedule.add(add)
    expect_error(409, "JobScheduleExists", client.job_schedule.add, add)
    assert client.job_schedule.exists(sid) is True
    s = client.job_schedule.get(sid)
    assert s.state == batchmodels.JobScheduleState.active, dump(s)
    assert_close(s.schedule.do_not_run_until, not_until, "doNotRunUntil")
    assert_close(s.execution_info.next_run_time, not_until, "next run time before doNotRunUntil")
    assert s.execution_info.recent_job is None, dump(s)
    assert [(m.name, m.value) for m in s.metadata] == [("stage", "added")], dump(s)
    assert lower(s.job_specification.pool_info.auto_pool_specification.pool_lifetime_option) == "jobschedule", dump(s)
    assert job_ids(client, sid) == []

    # another schedule, active, that never runs during the test
    other = unique("other")
    client.job_schedule.add(
        batchmodels.JobScheduleAddParameter(
            id=other,
            schedule=batchmodels.Schedule(do_not_run_until=now + datetime.timedelta(days=1)),
            job_specification=job_spec(image, "job", unique("other"), manager),
        )
    )

    # Disable, twice
    client.job_schedule.disable(sid)
    s = client.job_schedule.get(sid)
    assert s.state == batchmodels.JobScheduleState.disabled, dump(s)
    assert s.previous_state == batchmodels.JobScheduleState.active, dump(s)
    expect_error(409, "JobScheduleDisabled", client.job_schedule.disable, sid)

    def listed(state):
        options = batchmodels.JobScheduleListOptions(filter="state eq '%s'" % state)
        return sorted(x.id for x in client.job_schedule.list(job_schedule_list_options=options))

    assert listed("disabled") == [sid]
    assert listed("active") == [other]
    assert sorted(x.id for x in client.job_schedule.list()) == sorted([sid, other])

    # Patch: only the metadata changes
    etag = s.e_tag
    client.job_schedule.patch(
        sid, batchmodels.JobSchedulePatchParameter(metadata=[batchmodels.MetadataItem(name="stage", value="patched")])
    )
    s = client.job_schedule.get(sid)
    assert s.e_tag != etag, dump(s)
    assert [(m.name, m.value) for m in s.metadata] == [("stage", "patched")], dump(s)
    assert_close(s.schedule.do_not_run_until, not_until, "doNotRunUntil after Patch")
    assert s.schedule.recurrence_interval == ONE_MINUTE, dump(s)
    assert s.state == batchmodels.JobScheduleState.disabled, dump(s)

    # Update (PUT): a new schedule (five minutes from now), metadata removed
    now = service_now(service)
    sooner = now + datetime.timedelta(minutes=5)
    client.job_schedule.update(
        sid,
        batchmodels.JobScheduleUpdateParameter(
            schedule=batchmodels.Schedule(do_not_run_until=sooner, recurrence_interval=ONE_MINUTE),
            job_specification=job_spec(image, "jobschedule", prefix, manager),
        ),
    )
    s = client.job_schedule.get(sid)
    assert not s.metadata, dump(s)
    assert_close(s.schedule.do_not_run_until, sooner, "doNotRunUntil after Update")
    assert_close(s.execution_info.next_run_time, sooner, "next run time after Update")
    assert s.state == batchmodels.JobScheduleState.disabled, dump(s)

    # Enable: active again, still nothing before doNotRunUntil
    client.job_schedule.enable(sid)
    s = client.job_schedule.get(sid)
    assert s.state == batchmodels.JobScheduleState.active, dump(s)
    assert listed("disabled") == []
    assert listed("active") == sorted([sid, other])

    service.advance_clock("PT4M")
    s = client.job_schedule.get(sid)
    assert s.execution_info.recent_job is None, dump(s)
    assert_close(s.execution_info.next_run_time, sooner, "next run time before doNotRunUntil")
    assert job_ids(client, sid) == []

    # the clock passes doNotRunUntil: job-1
    service.advance_clock("PT1M")
    job1, job2 = "%s:job-1" % sid, "%s:job-2" % sid
    s = client.job_schedule.get(sid)
    assert s.execution_info.recent_job is not None and s.execution_info.recent_job.id == job1, dump(s)
    assert_close(s.execution_info.next_run_time, sooner + ONE_MINUTE, "next run time after job-1")
    job, pool = run_scheduled_job(client, job1, manager)
    assert pool.startswith(prefix), dump(job)

    # the pool outlives job-1: it is the schedule's
    p = client.pool.get(pool)
    assert p.state == batchmodels.PoolState.active, dump(p)
    assert p.auto_scale_formula is None and p.target_dedicated_nodes == 1, dump(p)

    # a minute on: job-2, on the same pool
    service.advance_clock("PT1M")
    s = client.job_schedule.get(sid)
    assert s.execution_info.recent_job.id == job2, dump(s)
    assert_close(s.execution_info.next_run_time, sooner + 2 * ONE_MINUTE, "next run time after job-2")
    job, pool2 = run_scheduled_job(client, job2, manager)
    assert pool2 == pool, dump(job)
    assert client.pool.get(pool).state == batchmodels.PoolState.active
    assert job_ids(client, sid) == [job1, job2]
    assert [p.id for p in client.pool.list() if p.id.startswith(prefix)] == [pool]

    # Delete: the schedule, its jobs and its pool go
    client.job_schedule.delete(sid)
    wait_schedule_gone(client, sid)
    assert_job_gone(client, job1)
    assert_job_gone(client, job2)
    wait_pool_gone(client, pool)
    expect_error(404, "JobScheduleNotFound", client.job_schedule.disable, sid)

    # the other schedule never ran; delete it too
    assert job_ids(client, other) == []
    client.job_schedule.delete(other)
    wait_schedule_gone(client, other)
    assert not list(client.job_schedule.list())
