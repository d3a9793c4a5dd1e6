"""The Airflow Microsoft Azure provider's Batch hook and operator, driven through azure-batch 15.1.0.

apache-airflow-providers-microsoft-azure 15.2.1 (requires azure-batch>=15.0.0) runs a Batch job
with `AzureBatchOperator.execute`, which calls `AzureBatchHook`: it builds
`BatchClient(endpoint=account_url, credential=AzureNamedKeyCredential(login, password))`,
configures and creates a pool (a 409 "already exists" is ignored), waits until every node of
the pool is idle / startTaskFailed / unusable (get_pool, checking `resize_errors`, then
list_nodes, until there are `target_dedicated_nodes` nodes), creates the job and one task (409s
ignored), lists the job's tasks until all are completed and collects those whose
`execution_info.result` is failure, then deletes the job and the pool with
`begin_delete_job(...).result()` / `begin_delete_pool(...).result()` and raises if a task failed.
`on_kill` terminates the job with `begin_terminate_job(job_id).result()` (which 15.1.0 refuses
client-side: see the last test).
With `use_latest_verified_vm_image_and_sku` it picks the image from
`list_supported_images(filter="verificationType eq 'verified'")` by publisher, offer and sku
prefix. The deferrable mode's trigger lists the tasks the same way.

Airflow itself is not installed: `AirflowBatchRun` below replays that request sequence call for
call with the same client calls and arguments (hooks/batch.py, operators/batch.py and
triggers/batch.py of that release). Only the sleeps between polls are shorter (the hook sleeps 10 s
between node checks and 15 s between task checks).
"""

import time

import pytest
from azure.core.credentials import AzureNamedKeyCredential
from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError

from azure.batch import BatchClient
import azure.batch.models as batch_models

from batchclientutil import API_VERSION
from batchutil import dump, lower, unique, wait_until

NODE_POLL = 0.3  # the hook: 10 s
TASK_POLL = 0.3  # the hook: 15 s


class AirflowBatchRun:
    """AzureBatchOperator(...).execute() with AzureBatchHook, non-deferrable, as in provider 15.2.1."""

    def __init__(self, account_url, login, password, client_kwargs=None, **operator_args):
        # AzureBatchHook.get_conn(): shared key credential from the connection's login/password.
        # client_kwargs only adds an observer (raw_response_hook) for failure reports.
        self.connection = BatchClient(
            endpoint=account_url, credential=AzureNamedKeyCredential(login, password), **(client_kwargs or {})
        )
        self.args = dict(
            batch_pool_display_name=None,
            batch_job_display_name=None,
            batch_task_display_name=None,
            batch_start_task=None,
            target_low_priority_nodes=None,
            enable_auto_scale=False,
            auto_scale_formula=None,
            use_latest_verified_vm_image_and_sku=False,
            vm_publisher=None,
            vm_offer=None,
            sku_starts_with=None,
            vm_sku=None,
            vm_version=None,
            timeout=25,
            should_delete_job=False,
            should_delete_pool=False,
        )
        self.args.update(operator_args)
        self.log = []

    # -- AzureBatchHook ---------------------------------------------------------------------
    def configure_pool(self, pool_id, vm_size, vm_node_agent_sku_id, vm_publisher=None, vm_offer=None,
                       sku_starts_with=None, vm_sku=None, vm_version=None, display_name=None,
                       target_dedicated_nodes=None, use_latest_image_and_sku=False, **kwargs):
        if use_latest_image_and_sku:
            sku_to_use, image_ref_to_use = self.get_latest_verified_image_vm_and_sku(
                publisher=vm_publisher, offer=vm_offer, sku_starts_with=sku_starts_with)
            image_reference, node_agent_sku_id = image_ref_to_use, sku_to_use
        else:
            image_reference = batch_models.BatchVmImageReference(
                publisher=vm_publisher, offer=vm_offer, sku=vm_sku, version=vm_version)
            node_agent_sku_id = vm_node_agent_sku_id
        return batch_models.BatchPoolCreateOptions(
            id=pool_id,
            vm_size=vm_size,
            display_name=display_name,
            virtual_machine_configuration=batch_models.VirtualMachineConfiguration(
                image_reference=image_reference, node_agent_sku_id=node_agent_sku_id),
            target_dedicated_nodes=target_dedicated_nodes,
            **kwargs,
        )

    def create_pool(self, pool):
        try:
            self.connection.create_pool(pool)
            self.log.append(("pool created", pool.id))
        except ResourceExistsError:
            self.log.append(("pool exists", pool.id))

    def get_latest_verified_image_vm_and_sku(self, publisher=None, offer=None, sku_starts_with=None):
        images = self.connection.list_supported_images(filter="verificationType eq 'verified'")
        skus_to_use = [
            (image.node_agent_sku_id, image.image_reference)
            for image in images
            if publisher is not None and offer is not None and sku_starts_with is not None
            and image.image_reference.publisher is not None
            and image.image_reference.offer is not None
            and image.image_reference.sku is not None
            and image.image_reference.publisher.lower() == publisher
            and image.image_reference.offer.lower() == offer
            and image.image_reference.sku.startswith(sku_starts_with)
        ]
        return skus_to_use[0]

    def wait_for_all_node_state(self, pool_id, node_state):
        while True:
            pool = self.connection.get_pool(pool_id)
            if pool.resize_errors is not None:
                raise RuntimeError("resize error encountered for pool %s: %r" % (pool.id, pool.resize_errors))
            nodes = list(self.connection.list_nodes(pool.id))
            target_nodes = pool.target_dedicated_nodes or 0
            if len(nodes) >= target_nodes and all(node.state in node_state for node in nodes):
                return nodes
            time.sleep(NODE_POLL)

    def create_job(self, job):
        try:
            self.connection.create_job(job)
            self.log.append(("job created", job.id))
        except ResourceExistsError:
            self.log.append(("job exists", job.id))

    def add_single_task_to_job(self, job_id, task):
        try:
            self.connection.create_task(job_id, task)
            self.log.append(("task created", task.id))
        except ResourceExistsError:
            self.log.append(("task exists", task.id))

    def wait_for_job_tasks_to_complete(self, job_id, timeout):
        deadline = time.monotonic() + timeout * 60
        while time.monotonic() < deadline:
            tasks = list(self.connection.list_tasks(job_id))
            incomplete = [t for t in tasks if t.state != batch_models.BatchTaskState.COMPLETED]
            if not incomplete:
                return [
                    t for t in tasks
                    if t.execution_info is not None
                    and t.execution_info.result == batch_models.BatchTaskExecutionResult.FAILURE
                ]
            time.sleep(TASK_POLL)
        raise TimeoutError("Timed out waiting for tasks to complete")

    # -- AzureBatchOperator -----------------------------------------------------------------
    def execute(self):
        """AzureBatchOperator.execute (deferrable=False)."""
        a = self.args
        self.submit()
        fail_tasks = self.wait_for_job_tasks_to_complete(job_id=a["batch_job_id"], timeout=a["timeout"])
        if a["should_delete_job"]:
            self.clean_up(job_id=a["batch_job_id"])
        if a["should_delete_pool"]:
            self.clean_up(a["batch_pool_id"])
        if fail_tasks:
            raise RuntimeError("Job fail. The failed task are: %s" % fail_tasks)

    def submit(self):
        """The part of execute() before it waits for the tasks: pool, nodes, job, task."""
        a = self.args
        pool = self.configure_pool(
            pool_id=a["batch_pool_id"],
            vm_size=a["batch_pool_vm_size"],
            display_name=a["batch_pool_display_name"],
            target_dedicated_nodes=a["target_dedicated_nodes"],
            use_latest_image_and_sku=a["use_latest_verified_vm_image_and_sku"],
            vm_publisher=a["vm_publisher"],
            vm_offer=a["vm_offer"],
            sku_starts_with=a["sku_starts_with"],
            vm_sku=a["vm_sku"],
            vm_version=a["vm_version"],
            vm_node_agent_sku_id=a["vm_node_agent_sku_id"],
            target_low_priority_nodes=a["target_low_priority_nodes"],
            enable_auto_scale=a["enable_auto_scale"],
            auto_scale_formula=a["auto_scale_formula"],
            start_task=a["batch_start_task"],
        )
        self.create_pool(pool)
        self.wait_for_all_node_state(
            a["batch_pool_id"],
            {
                batch_models.BatchNodeState.START_TASK_FAILED,
                batch_models.BatchNodeState.UNUSABLE,
                batch_models.BatchNodeState.IDLE,
            },
        )
        job = batch_models.BatchJobCreateOptions(
            id=a["batch_job_id"],
            pool_info=batch_models.BatchPoolInfo(pool_id=a["batch_pool_id"]),
            display_name=a["batch_job_display_name"],
            job_manager_task=None,
            job_preparation_task=None,
            job_release_task=None,
        )
        self.create_job(job)
        task = batch_models.BatchTaskCreateOptions(
            id=a["batch_task_id"],
            command_line=a["batch_task_command_line"],
            display_name=a["batch_task_display_name"],
            container_settings=None,
            resource_files=None,
            output_files=None,
            user_identity=None,
        )
        self.add_single_task_to_job(job_id=a["batch_job_id"], task=task)

    def on_kill(self):
        """AzureBatchOperator.on_kill: terminate the job and wait (the poller) until it is done."""
        self.connection.begin_terminate_job(self.args["batch_job_id"]).result()
        self.log.append(("job terminated", self.args["batch_job_id"]))

    def clean_up(self, pool_id=None, job_id=None):
        if job_id:
            self.connection.begin_delete_job(job_id).result()
            self.log.append(("job deleted", job_id))
        if pool_id:
            self.connection.begin_delete_pool(pool_id).result()
            self.log.append(("pool deleted", pool_id))

    # -- AzureBatchTrigger (deferrable mode): one poll of the job's tasks ---------------------
    def trigger_event(self, job_id):
        tasks = list(self.connection.list_tasks(job_id))
        if not tasks:
            return {"status": "error", "message": "no tasks"}
        if [t for t in tasks if t.state != batch_models.BatchTaskState.COMPLETED]:
            return None
        failed = [
            t.id for t in tasks
            if t.execution_info and t.execution_info.result == batch_models.BatchTaskExecutionResult.FAILURE
        ]
        if failed:
            return {"status": "error", "failed_tasks": failed}
        return {"status": "success"}


def ubuntu_image(client):
    image = next((i for i in client.list_supported_images() if i.node_agent_sku_id == "batch.node.ubuntu 22.04"), None)
    assert image is not None, "no batch.node.ubuntu 22.04 image"
    return image


def assert_gone(client, job_id, pool_id):
    with pytest.raises(ResourceNotFoundError) as exc:
        client.get_job(job_id)
    assert exc.value.error is not None and exc.value.error.code == "JobNotFound", exc.value
    with pytest.raises(ResourceNotFoundError) as exc:
        client.get_pool(pool_id)
    assert exc.value.error is not None and exc.value.error.code == "PoolNotFound", exc.value


@pytest.mark.timeout(120)
def test_airflow_operator_runs_a_task_and_reruns_idempotently(openbatch, client, http_trace):
    """Explicit image, a start task, no cleanup in execute; a second execute with the same ids (an
    Airflow retry) gets 409s for pool, job and task, which the hook ignores; then clean_up."""
    image = ubuntu_image(client)
    ref = image.image_reference
    pool_id, job_id = unique("af-pool"), unique("af-job")
    args = dict(
        batch_pool_id=pool_id,
        batch_pool_vm_size="standard_d2_v3",
        batch_job_id=job_id,
        batch_task_id="hello",
        batch_task_command_line='/bin/sh -c "echo hello from $AZ_BATCH_TASK_ID on $AZ_BATCH_POOL_ID"',
        vm_publisher=ref.publisher,
        vm_offer=ref.offer,
        vm_sku=ref.sku,
        vm_version=ref.version,
        vm_node_agent_sku_id=image.node_agent_sku_id,
        target_dedicated_nodes=2,
        batch_start_task=batch_models.BatchStartTask(command_line='/bin/sh -c "echo started"', wait_for_success=True),
    )
    run = AirflowBatchRun(openbatch.url, openbatch.account, openbatch.key,
                          client_kwargs={"raw_response_hook": http_trace}, **args)
    try:
        run.execute()  # raises if the task failed
        assert run.log == [("pool created", pool_id), ("job created", job_id), ("task created", "hello")], run.log

        nodes = list(client.list_nodes(pool_id))
        assert len(nodes) == 2 and all(lower(n.state) == "idle" for n in nodes), [dump(n) for n in nodes]
        assert all(n.start_task_info is not None and n.start_task_info.exit_code == 0 for n in nodes), [dump(n) for n in nodes]
        task = client.get_task(job_id, "hello")
        assert lower(task.state) == "completed", dump(task)
        assert task.execution_info.exit_code == 0 and lower(task.execution_info.result) == "success", dump(task)
        out = b"".join(client.download_task_file(job_id, "hello", "stdout.txt"))
        assert out == ("hello from hello on %s\n" % pool_id).encode(), out
        assert run.trigger_event(job_id) == {"status": "success"}

        # Airflow retries the task instance: everything exists already
        run.log.clear()
        run.execute()
        assert run.log == [("pool exists", pool_id), ("job exists", job_id), ("task exists", "hello")], run.log
        assert [t.id for t in client.list_tasks(job_id)] == ["hello"]

        run.clean_up(job_id=job_id)
        run.clean_up(pool_id)
        assert_gone(client, job_id, pool_id)
        assert {v for (_, _, v) in http_trace.requests} == {API_VERSION}
    finally:
        for fn, rid in ((client.begin_delete_job, job_id), (client.begin_delete_pool, pool_id)):
            try:
                fn(rid, polling_interval=1).result()
            except Exception:
                pass


@pytest.mark.timeout(120)
def test_airflow_operator_latest_verified_image_failed_task_and_cleanup(openbatch, client, http_trace):
    """use_latest_verified_vm_image_and_sku (list_supported_images with an OData filter), a task
    exiting 3, should_delete_job and should_delete_pool: the operator deletes both through the
    begin_* pollers and then raises with the failed task."""
    image = ubuntu_image(client)
    ref = image.image_reference
    verified = list(client.list_supported_images(filter="verificationType eq 'verified'"))
    assert verified and all(lower(i.verification_type) == "verified" for i in verified), [dump(i) for i in verified]
    pool_id, job_id = unique("af-pool"), unique("af-job")
    run = AirflowBatchRun(
        openbatch.url, openbatch.account, openbatch.key,
        client_kwargs={"raw_response_hook": http_trace},
        batch_pool_id=pool_id,
        batch_pool_vm_size="standard_d2_v3",
        batch_job_id=job_id,
        batch_task_id="fails",
        batch_task_command_line='/bin/sh -c "exit 3"',
        use_latest_verified_vm_image_and_sku=True,
        vm_publisher=ref.publisher.lower(),
        vm_offer=ref.offer.lower(),
        sku_starts_with=ref.sku[:5],
        vm_sku=ref.sku,
        vm_node_agent_sku_id=image.node_agent_sku_id,
        target_dedicated_nodes=1,
        should_delete_job=True,
        should_delete_pool=True,
    )
    sku_id, chosen = run.get_latest_verified_image_vm_and_sku(ref.publisher.lower(), ref.offer.lower(), ref.sku[:5])
    assert chosen.publisher.lower() == ref.publisher.lower() and chosen.sku.startswith(ref.sku[:5]), dump(chosen)
    try:
        with pytest.raises(RuntimeError, match="Job fail") as exc:
            run.execute()
        text = str(exc.value)
        assert "'id': 'fails'" in text and "'exitCode': 3" in text, text
        assert run.log == [("pool created", pool_id), ("job created", job_id), ("task created", "fails"),
                           ("job deleted", job_id), ("pool deleted", pool_id)], run.log
        assert_gone(client, job_id, pool_id)
        pool_req = [p for (m, p, _) in http_trace.requests if m == "POST" and p == "/pools"]
        assert len(pool_req) == 1
    finally:
        for fn, rid in ((client.begin_delete_job, job_id), (client.begin_delete_pool, pool_id)):
            try:
                fn(rid, polling_interval=1).result()
            except Exception:
                pass


@pytest.mark.timeout(120)
def test_airflow_operator_on_kill_and_terminating_the_running_job(openbatch, client, http_trace):
    """The operator is killed while its task runs. Its on_kill, begin_terminate_job(job_id) without
    options, does not reach the service with azure-batch 15.1.0: the client refuses to build a
    terminate request without a body (ValueError from its serializer; see
    ../../../shared/azure-batch-wire/newer/diff.md, pitfall 8). This pins that client behaviour
    and then terminates the job the way 15.1.0 accepts, with a BatchJobTerminateOptions body,
    waiting on the poller: the running task is ended and the job completes."""
    from azure.batch.models._models import BatchJobTerminateOptions  # the type begin_terminate_job names; not re-exported

    image = ubuntu_image(client)
    ref = image.image_reference
    pool_id, job_id = unique("af-pool"), unique("af-job")
    run = AirflowBatchRun(
        openbatch.url, openbatch.account, openbatch.key,
        client_kwargs={"raw_response_hook": http_trace},
        batch_pool_id=pool_id,
        batch_pool_vm_size="standard_d2_v3",
        batch_job_id=job_id,
        batch_task_id="long",
        batch_task_command_line="sleep 120",
        vm_publisher=ref.publisher,
        vm_offer=ref.offer,
        vm_sku=ref.sku,
        vm_node_agent_sku_id=image.node_agent_sku_id,
        target_dedicated_nodes=1,
    )
    try:
        run.submit()

        def running():
            t = client.get_task(job_id, "long")
            return lower(t.state) == "running", dump(t)

        wait_until("task long running", running, timeout=30, interval=0.2)
        sent_before = len(http_trace.requests)
        with pytest.raises(ValueError, match="No value for given attribute"):
            run.on_kill()
        assert len(http_trace.requests) == sent_before, http_trace.requests[sent_before:]

        started = time.monotonic()
        run.connection.begin_terminate_job(job_id, BatchJobTerminateOptions(termination_reason="AirflowKilled")).result()
        assert time.monotonic() - started < 20
        assert ("POST", "/jobs/%s/terminate" % job_id, API_VERSION) in http_trace.requests
        job = client.get_job(job_id)
        assert lower(job.state) == "completed", dump(job)
        assert job.execution_info.termination_reason == "AirflowKilled", dump(job)
        task = client.get_task(job_id, "long")
        assert lower(task.state) == "completed", dump(task)
        assert lower(task.execution_info.result) == "failure", dump(task)
        assert task.execution_info.failure_info.code == "TaskEnded", dump(task)
        assert run.trigger_event(job_id) == {"status": "error", "failed_tasks": ["long"]}
        run.clean_up(job_id=job_id)
        run.clean_up(pool_id)
        assert_gone(client, job_id, pool_id)
    finally:
        for fn, rid in ((client.begin_delete_job, job_id), (client.begin_delete_pool, pool_id)):
            try:
                fn(rid, polling_interval=1).result()
            except Exception:
                pass
