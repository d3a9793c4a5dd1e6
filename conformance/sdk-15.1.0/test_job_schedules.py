"""A job schedule through azure-batch 15.1.0, the TypeSpec `azure.batch.BatchClient`.

create_job_schedule (BatchJobScheduleCreateOptions; the client sends the recurrence interval as
`PT01H00M00S`) on an existing pool with a job manager task → job_schedule_exists → the first
job `<id>:job-1` is created at once and completes through its job manager task (stdout.txt
through download_task_file) → list_jobs_from_schedule → get_job_schedule (recentJob,
nextRunTime one interval after creation) → list_job_schedules → duplicate create (409) →
begin_terminate_job_schedule (the poller waits for `completed`) → begin_delete_job_schedule
(the poller waits until it is gone; its job goes with it). Everything goes through the
unmodified client.
"""

import datetime

import pytest
from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError

import azure.batch.models as bm

from batchclientutil import API_VERSION, add_idle_pool
from batchutil import dump, lower, unique, wait_until

POLL = 1  # polling_interval of the begin_* pollers, seconds (the client's default is 5)
WAIT = 60
EVERY = datetime.timedelta(hours=1)
MANAGER = bm.BatchJobManagerTask(id="manager", command_line='/bin/sh -c "echo manager of $AZ_BATCH_JOB_ID"')


@pytest.mark.timeout(150)
def test_job_schedule_on_a_pool(openbatch, client, http_trace):
    pool_id = unique("js-pool")
    sid = unique("js")
    try:
        run(client, pool_id, sid)
        sent = {v for (_, _, v) in http_trace.requests}
        assert sent == {API_VERSION}, "api-versions sent: %s" % sent
    finally:
        for fn, rid in ((client.begin_delete_job_schedule, sid), (client.begin_delete_pool, pool_id)):
            try:
                fn(rid, polling_interval=POLL).result(timeout=WAIT)
            except Exception:
                pass


def run(client, pool_id, sid):
    add_idle_pool(client, pool_id, 1, WAIT)

    create = bm.BatchJobScheduleCreateOptions(
        id=sid,
        display_name="hourly",
        schedule=bm.BatchJobScheduleConfiguration(recurrence_interval=EVERY),
        job_specification=bm.BatchJobSpecification(pool_info=bm.BatchPoolInfo(pool_id=pool_id), job_manager_task=MANAGER),
        metadata=[bm.BatchMetadataItem(name="owner", value="conformance")],
    )
    client.create_job_schedule(create)
    assert client.job_schedule_exists(sid) is True
    with pytest.raises(ResourceExistsError) as exc:
        client.create_job_schedule(create)
    assert exc.value.status_code == 409 and exc.value.error.code == "JobScheduleExists", exc.value

    # job-1 is due at once and completes through its job manager task
    job1 = "%s:job-1" % sid

    def completed():
        job = client.get_job(job1)
        return lower(job.state) == "completed", (job if lower(job.state) == "completed" else dump(job))

    job = wait_until("job %s to complete" % job1, completed, WAIT, interval=0.3)
    assert job.pool_info.pool_id == pool_id, dump(job)
    assert job.execution_info.pool_id == pool_id, dump(job)
    assert job.execution_info.termination_reason == "JMComplete", dump(job)
    assert job.job_manager_task is not None and job.job_manager_task.id == "manager", dump(job)
    task = client.get_task(job1, "manager")
    assert lower(task.state) == "completed", dump(task)
    assert task.execution_info.exit_code == 0 and lower(task.execution_info.result) == "success", dump(task)
    out = b"".join(client.download_task_file(job1, "manager", "stdout.txt"))
    assert out == ("manager of %s\n" % job1).encode(), out

    jobs = list(client.list_jobs_from_schedule(sid))
    assert [j.id for j in jobs] == [job1], [dump(j) for j in jobs]
    assert lower(jobs[0].state) == "completed", dump(jobs[0])

    s = client.get_job_schedule(sid)
    assert s.id == sid and s.display_name == "hourly", dump(s)
    assert lower(s.state) == "active", dump(s)
    assert s.schedule.recurrence_interval == EVERY, dump(s)
    assert s.job_specification.pool_info.pool_id == pool_id, dump(s)
    assert s.job_specification.job_manager_task.id == "manager", dump(s)
    assert s.job_specification.job_manager_task.command_line == MANAGER.command_line, dump(s)
    assert [(m.name, m.value) for m in s.metadata] == [("owner", "conformance")], dump(s)
    info = s.execution_info
    assert info.recent_job is not None and info.recent_job.id == job1, dump(s)
    assert info.next_run_time is not None and abs(info.next_run_time - (s.creation_time + EVERY)) <= datetime.timedelta(seconds=1), dump(s)
    assert info.end_time is None, dump(s)
    assert sid in {x.id for x in client.list_job_schedules()}

    # get, change, replace (PUT at 2025-06-01: the body is the schedule's own model, sent back
    # with what the Get returned)
    s.metadata = [bm.BatchMetadataItem(name="owner", value="replaced")]
    s.schedule.recurrence_interval = EVERY * 2
    client.replace_job_schedule(sid, s)
    s = client.get_job_schedule(sid)
    assert [(m.name, m.value) for m in s.metadata] == [("owner", "replaced")], dump(s)
    assert s.schedule.recurrence_interval == EVERY * 2, dump(s)

    # terminate: the poller waits until the schedule completed
    client.begin_terminate_job_schedule(sid, polling_interval=POLL).result(timeout=WAIT)
    s = client.get_job_schedule(sid)
    assert lower(s.state) == "completed", dump(s)
    assert s.execution_info.next_run_time is None and s.execution_info.end_time is not None, dump(s)
    assert [j.id for j in client.list_jobs_from_schedule(sid)] == [job1]

    # delete: the poller waits until it is gone; its job goes with it
    client.begin_delete_job_schedule(sid, polling_interval=POLL).result(timeout=WAIT)
    with pytest.raises(ResourceNotFoundError) as exc:
        client.get_job_schedule(sid)
    assert exc.value.error is not None and exc.value.error.code == "JobScheduleNotFound", exc.value
    with pytest.raises(ResourceNotFoundError) as exc:
        client.get_job(job1)
    assert exc.value.error is not None and exc.value.error.code == "JobNotFound", exc.value
    assert sid not in {x.id for x in client.list_job_schedules()}
