"""A job manager task using its authentication token through azure-batch 15.1.0 (BatchClient).

The 13.0.0 version is conformance/test_lifecycle.py `test_job_manager_adds_tasks_with_its_token`.
Here the job manager task's command runs a script with this venv's python that builds
`azure.batch.BatchClient(AZ_BATCH_ACCOUNT_URL, credential)` from `AZ_BATCH_AUTHENTICATION_TOKEN`
(an azure-core TokenCredential), adds a task to its own job, waits for it, and reads another job
(403: the token grants its own job only).

Two things of the 15.x client matter here:

* The GA 15.1.0 models dropped `authenticationTokenSettings` (its 15.1.0b2/b3 betas still had it;
  2025-06-01 of the service takes it, see README "Removed in later versions"). The 15.x models are
  mappings of their wire JSON, so the test sets the wire property on the BatchJobManagerTask
  directly; the unmodified client sends it as given.
* azure-core's BearerTokenCredentialPolicy refuses bearer tokens over plain http
  ("Bearer token authentication is not permitted for non-TLS protected (non-https) URLs") unless
  the request carries the option `enforce_https=False`. It is a per-operation keyword (the policy
  reads it from the request's options): given to the BatchClient constructor it has no effect.
  The script passes it on every call.
"""

import os
import sys
import textwrap

import pytest

import azure.batch.models as bm

from batchclientutil import add_idle_pool
from batchutil import dump, lower, unique, wait_until

WAIT = 60
POLL = 1

JM_SCRIPT = textwrap.dedent(
    '''
    import os, sys, time
    from azure.batch import BatchClient
    import azure.batch.models as bm
    from azure.core.credentials import AccessToken
    from azure.core.exceptions import HttpResponseError

    class TaskTokenCredential:
        """azure-core TokenCredential: the task's own token, whatever the scopes."""

        def __init__(self, token):
            self.token = token

        def get_token(self, *scopes, **kwargs):
            return AccessToken(self.token, int(time.time()) + 3600)

    token = os.environ["AZ_BATCH_AUTHENTICATION_TOKEN"]
    url = os.environ["AZ_BATCH_ACCOUNT_URL"]
    job_id = os.environ["AZ_BATCH_JOB_ID"]
    other_job = sys.argv[1]
    print("account url %s, job %s" % (url, job_id), flush=True)
    client = BatchClient(url, TaskTokenCredential(token), retry_total=0, connection_timeout=10, read_timeout=30)
    # bearer tokens over http: a per-request option of azure-core's BearerTokenCredentialPolicy
    plain = {"enforce_https": False}

    client.create_task(job_id, bm.BatchTaskCreateOptions(
        id="added", command_line="/bin/sh -c 'echo added by $AZ_BATCH_JOB_ID'"), **plain)
    print("added task", flush=True)

    deadline = time.monotonic() + 45
    while True:
        t = client.get_task(job_id, "added", **plain)
        if str(t.state).lower().endswith("completed"):
            break
        if time.monotonic() > deadline:
            print("task did not complete: %s" % t.state, flush=True)
            sys.exit(10)
        time.sleep(0.3)
    print("added completed: exit code %s" % t.execution_info.exit_code, flush=True)

    try:
        other = client.get_job(other_job, **plain)
    except HttpResponseError as e:
        code = e.error.code if e.error is not None else None
        print("get_job(other): %s %s" % (e.status_code, code), flush=True)
        if e.status_code != 403:
            sys.exit(11)
    else:
        print("get_job of another job succeeded with the task token: %s" % other.id, flush=True)
        sys.exit(12)
    print("ok", flush=True)
    '''
)


def read_file(client, job_id, task_id, name):
    return b"".join(client.download_task_file(job_id, task_id, name)).decode(errors="replace")


@pytest.mark.timeout(150)
def test_job_manager_uses_its_token_with_batch_client(openbatch, client, tmp_path):
    pool_id = unique("tok-pool")
    job_id = unique("tok-job")
    other_job = unique("tok-other")
    script = tmp_path / "jm.py"
    script.write_text(JM_SCRIPT)
    os.chmod(tmp_path, 0o755)
    os.chmod(script, 0o644)
    try:
        # two nodes: the job manager runs exclusive on one (runExclusive defaults to true)
        add_idle_pool(client, pool_id, 2, WAIT)

        # the job the token must not reach
        client.create_job(bm.BatchJobCreateOptions(id=other_job, pool_info=bm.BatchPoolInfo(pool_id=pool_id)))

        command_line = "%s %s %s" % (os.path.abspath(sys.executable), script, other_job)
        jm = bm.BatchJobManagerTask(id="jm", command_line=command_line)
        # not a property of the GA 15.1.0 model (see the module docstring): set on the wire JSON
        assert not hasattr(bm, "AuthenticationTokenSettings")
        jm["authenticationTokenSettings"] = {"access": ["job"]}
        client.create_job(
            bm.BatchJobCreateOptions(id=job_id, pool_info=bm.BatchPoolInfo(pool_id=pool_id), job_manager_task=jm)
        )

        job = client.get_job(job_id)
        got = job.job_manager_task
        assert got is not None and got.id == "jm" and got.command_line == command_line, dump(job)
        assert got.get("authenticationTokenSettings") == {"access": ["job"]}, dump(job)

        def completed(task_id):
            def probe():
                t = client.get_task(job_id, task_id)
                return lower(t.state) == "completed", t if lower(t.state) == "completed" else dump(t)

            return probe

        try:
            jm_task = wait_until("the job manager task of %s to complete" % job_id, completed("jm"), WAIT, 0.3)
        finally:
            try:
                print("jm stdout:\n%s\njm stderr:\n%s" % (
                    read_file(client, job_id, "jm", "stdout.txt"), read_file(client, job_id, "jm", "stderr.txt")))
            except Exception as e:  # only diagnostics
                print("could not read the job manager's output: %r" % e)

        jm_out = read_file(client, job_id, "jm", "stdout.txt")
        jm_err = read_file(client, job_id, "jm", "stderr.txt")
        info = jm_task.execution_info
        assert info.exit_code == 0 and lower(info.result) == "success", "%s\nstdout:\n%s\nstderr:\n%s" % (
            dump(jm_task), jm_out, jm_err)
        assert "added task" in jm_out, jm_out
        assert "get_job(other): 403" in jm_out, jm_out
        assert jm_out.rstrip().endswith("ok"), jm_out

        # the task the job manager added exists, ran and completed before the job manager ended
        added = client.get_task(job_id, "added")
        assert lower(added.state) == "completed", dump(added)
        assert added.execution_info.exit_code == 0 and lower(added.execution_info.result) == "success", dump(added)
        assert read_file(client, job_id, "added", "stdout.txt") == "added by %s\n" % job_id
        assert info.end_time >= added.execution_info.end_time, (dump(jm_task), dump(added))
        assert sorted(t.id for t in client.list_tasks(job_id)) == ["added", "jm"]

        # killJobOnCompletion defaults to true: the job completes with JMComplete
        def job_completed():
            j = client.get_job(job_id)
            return lower(j.state) == "completed", j if lower(j.state) == "completed" else dump(j)

        job = wait_until("job %s to complete" % job_id, job_completed, WAIT, 0.3)
        assert job.execution_info.termination_reason == "JMComplete", dump(job)

        # the other job is untouched by the 403
        assert lower(client.get_job(other_job).state) == "active"
    finally:
        for fn, rid in ((client.begin_delete_job, job_id), (client.begin_delete_job, other_job),
                        (client.begin_delete_pool, pool_id)):
            try:
                fn(rid, polling_interval=POLL).result(timeout=60)
            except Exception:
                pass
