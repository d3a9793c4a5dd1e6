"""One end-to-end scenario that runs under every official msrest azure-batch release (1.1.0 to 14.2.0).

scripts/test-all.sh runs the conformance suite once per SDK release, each in
its own venv; this test adapts to whichever release is installed and talks
to the service with that release's own api-version, operations and property
names (e.g. azure-batch 1.1.0 sends `targetDedicated`, `maxTasksPerNode` and
`runElevated` with api-version 2016-07-01.3.1).

Scenario: find a Linux image (ListNodeAgentSKUs before 7.0.0, ListSupportedImages
from it) → pool of 2 nodes with a start task and 2 task slots per node → wait
for 2 idle nodes (start task completed, its file readable on the node) → job →
one task (with the release's way of saying "not elevated") and 10 tasks by Add
Task Collection → wait for completion → exit codes and stdout.txt of each →
task counts (where the release has the operation) → 404 JobNotFound → resize
to 1 node → delete job and pool.

Every difference between releases is a column of RELEASES below; the scenario
itself has no version checks.
"""

import collections
import importlib.metadata
import os
from typing import NamedTuple, Optional

import pytest
import requests

import azure.batch.models as batchmodels
from azure.batch.models import BatchErrorException

from batchutil import delete_quietly, dump, http_details, lower, unique, wait_until

TASKS = 10  # tasks added by Add Task Collection (plus one by Add Task)
START_TASK = '/bin/sh -c "echo ok > $AZ_BATCH_NODE_SHARED_DIR/ok.txt"'
ECHO_TASK = '/bin/sh -c "echo $AZ_BATCH_TASK_ID"'


class Release(NamedTuple):
    """What differs between two azure-batch releases, as far as this scenario goes."""

    api_version: str
    # BatchServiceClient(credentials, <kwarg>=url): 'base_url' up to 5.1.1, 'batch_url' from 6.0.1
    url_kwarg: str
    # how to find an image: account.list_node_agent_skus (GET /nodeagentskus) before 7.0.0,
    # account.list_supported_images (GET /supportedimages) from 7.0.0
    images: str
    # PoolAddParameter / PoolResizeParameter / CloudPool: target_dedicated (targetDedicated)
    # up to 2.0.1, target_dedicated_nodes (targetDedicatedNodes) from 3.1.0
    target_dedicated: str
    # CloudPool: current_dedicated / current_dedicated_nodes
    current_dedicated: str
    # PoolAddParameter / CloudPool: max_tasks_per_node before 10.0.0, task_slots_per_node from it
    slots: str
    # how the single task says "not elevated": TaskAddParameter(run_elevated=False) in 1.1.0,
    # user_identity=UserIdentity(auto_user=AutoUserSpecification(elevation_level=non_admin)) later
    identity: str
    # StartTask.wait_for_success defaulted to false before 2019-08-01.10.0 (8.0.0): set it
    # explicitly there; from 8.0.0 the default (true) is relied on
    explicit_wait_for_success: bool
    # job.get_task_counts: None (no operation, before 3.1.0), 'TaskCounts' (3.1.0 - 9.0.0),
    # 'TaskCountsResult' (10.0.0+: .task_counts and .task_slot_counts)
    task_counts: Optional[str]
    # TaskExecutionInformation/StartTaskInformation .result and .failure_info (3.1.0+);
    # before that only exit_code and scheduling_error
    has_result: bool


#                 api-version        url_kwarg    images              target_dedicated          current_dedicated          slots                  identity        explicit_wfs task_counts         has_result
RELEASES = {
    "1.1.0": Release("2016-07-01.3.1", "base_url", "node_agent_skus", "target_dedicated", "current_dedicated", "max_tasks_per_node", "run_elevated", True, None, False),
    "2.0.1": Release("2017-01-01.4.0", "base_url", "node_agent_skus", "target_dedicated", "current_dedicated", "max_tasks_per_node", "user_identity", True, None, False),
    "3.1.0": Release("2017-06-01.5.1", "base_url", "node_agent_skus", "target_dedicated_nodes", "current_dedicated_nodes", "max_tasks_per_node", "user_identity", True, "TaskCounts", True),
    "4.0.0": Release("2017-09-01.6.0", "base_url", "node_agent_skus", "target_dedicated_nodes", "current_dedicated_nodes", "max_tasks_per_node", "user_identity", True, "TaskCounts", True),
    "4.1.3": Release("2018-03-01.6.1", "base_url", "node_agent_skus", "target_dedicated_nodes", "current_dedicated_nodes", "max_tasks_per_node", "user_identity", True, "TaskCounts", True),
    "5.1.1": Release("2018-08-01.7.0", "base_url", "node_agent_skus", "target_dedicated_nodes", "current_dedicated_nodes", "max_tasks_per_node", "user_identity", True, "TaskCounts", True),
    "6.0.1": Release("2018-12-01.8.0", "batch_url", "node_agent_skus", "target_dedicated_nodes", "current_dedicated_nodes", "max_tasks_per_node", "user_identity", True, "TaskCounts", True),
    "7.0.0": Release("2019-06-01.9.0", "batch_url", "supported_images", "target_dedicated_nodes", "current_dedicated_nodes", "max_tasks_per_node", "user_identity", True, "TaskCounts", True),
    "8.0.0": Release("2019-08-01.10.0", "batch_url", "supported_images", "target_dedicated_nodes", "current_dedicated_nodes", "max_tasks_per_node", "user_identity", False, "TaskCounts", True),
    "9.0.0": Release("2020-03-01.11.0", "batch_url", "supported_images", "target_dedicated_nodes", "current_dedicated_nodes", "max_tasks_per_node", "user_identity", False, "TaskCounts", True),
    "10.0.0": Release("2020-09-01.12.0", "batch_url", "supported_images", "target_dedicated_nodes", "current_dedicated_nodes", "task_slots_per_node", "user_identity", False, "TaskCountsResult", True),
    "11.0.0": Release("2021-06-01.14.0", "batch_url", "supported_images", "target_dedicated_nodes", "current_dedicated_nodes", "task_slots_per_node", "user_identity", False, "TaskCountsResult", True),
    "12.0.0": Release("2022-01-01.15.0", "batch_url", "supported_images", "target_dedicated_nodes", "current_dedicated_nodes", "task_slots_per_node", "user_identity", False, "TaskCountsResult", True),
    "13.0.0": Release("2022-10-01.16.0", "batch_url", "supported_images", "target_dedicated_nodes", "current_dedicated_nodes", "task_slots_per_node", "user_identity", False, "TaskCountsResult", True),
    # the last msrest (BatchServiceClient) releases; 15.x is the TypeSpec BatchClient, tested in sdk-15.1.0/
    "14.0.0": Release("2023-05-01.17.0", "batch_url", "supported_images", "target_dedicated_nodes", "current_dedicated_nodes", "task_slots_per_node", "user_identity", False, "TaskCountsResult", True),
    "14.1.0": Release("2023-11-01.18.0", "batch_url", "supported_images", "target_dedicated_nodes", "current_dedicated_nodes", "task_slots_per_node", "user_identity", False, "TaskCountsResult", True),
    "14.2.0": Release("2024-02-01.19.0", "batch_url", "supported_images", "target_dedicated_nodes", "current_dedicated_nodes", "task_slots_per_node", "user_identity", False, "TaskCountsResult", True),
}


# -- per-release adapters (each uses one column of Release) -------------------------------


def installed_release():
    import azure.batch

    version = importlib.metadata.version("azure-batch")
    module_version = getattr(azure.batch, "__version__", version)
    assert module_version == version, "azure.batch.__version__ %s, dist %s" % (module_version, version)
    wanted = os.environ.get("OPENBATCH_SDK_VERSION")
    if wanted and wanted != version:
        pytest.fail("OPENBATCH_SDK_VERSION=%s but the venv has azure-batch %s" % (wanted, version), pytrace=False)
    if version not in RELEASES:
        pytest.fail("azure-batch %s has no row in RELEASES of %s: add one" % (version, __file__), pytrace=False)
    return version, RELEASES[version]


def model(cls, **kwargs):
    """cls(**kwargs), refusing names the release's model does not have: msrest drops (or
    only logs) unknown keyword arguments, which would send a request without them."""
    unknown = sorted(set(kwargs) - set(cls._attribute_map))
    assert not unknown, "%s of this release has no %s (has: %s)" % (cls.__name__, unknown, sorted(cls._attribute_map))
    return cls(**kwargs)


def make_client(rel, url, account, key):
    from azure.batch import BatchServiceClient
    from azure.batch.batch_auth import SharedKeyCredentials

    client = BatchServiceClient(SharedKeyCredentials(account, key), **{rel.url_kwarg: url})
    client.config.retry_policy.retries = 0  # a 5xx shows at once (as in conftest.make_client)
    client.config.connection.timeout = 30
    return client


def linux_image(rel, client):
    """(node_agent_sku_id, ImageReference) of an ubuntu image, 22.04 preferred."""
    found = []
    if rel.images == "node_agent_skus":
        for sku in client.account.list_node_agent_skus():
            if lower(sku.os_type) == "linux" and "ubuntu" in (sku.id or "").lower():
                for ref in sku.verified_image_references or []:
                    found.append((sku.id, ref))
    else:
        for img in client.account.list_supported_images():
            if lower(img.os_type) == "linux" and "ubuntu" in (img.node_agent_sku_id or "").lower():
                found.append((img.node_agent_sku_id, img.image_reference))
    assert found, "no Linux ubuntu image found through account.list_%s()" % rel.images
    found.sort(key=lambda f: (f[0] != "batch.node.ubuntu 22.04", f[0]))
    sku_id, ref = found[0]
    assert ref is not None and ref.publisher and ref.offer and ref.sku, dump(ref)
    return sku_id, ref


def start_task(rel):
    kwargs = {"command_line": START_TASK}
    if rel.explicit_wait_for_success:
        kwargs["wait_for_success"] = True
    return model(batchmodels.StartTask, **kwargs)


def pool_add_parameter(rel, pool_id, sku_id, ref, nodes, slots):
    return model(
        batchmodels.PoolAddParameter,
        id=pool_id,
        vm_size="standard_d2_v3",
        virtual_machine_configuration=model(
            batchmodels.VirtualMachineConfiguration,
            image_reference=model(
                batchmodels.ImageReference,
                publisher=ref.publisher, offer=ref.offer, sku=ref.sku, version=ref.version or "latest"
            ),
            node_agent_sku_id=sku_id,
        ),
        start_task=start_task(rel),
        **{rel.target_dedicated: nodes, rel.slots: slots}
    )


def non_elevated(rel):
    if rel.identity == "run_elevated":
        return {"run_elevated": False}
    return {
        "user_identity": model(
            batchmodels.UserIdentity,
            auto_user=model(batchmodels.AutoUserSpecification, elevation_level=batchmodels.ElevationLevel.non_admin),
        )
    }


def resize_parameter(rel, nodes):
    return model(batchmodels.PoolResizeParameter, **{rel.target_dedicated: nodes})


def task_counts(rel, client, job_id):
    """(active, running, completed, succeeded, failed), or None without the operation."""
    if rel.task_counts is None:
        assert not hasattr(client.job, "get_task_counts")
        return None
    result = client.job.get_task_counts(job_id)
    assert type(result).__name__ == rel.task_counts, dump(result)
    if rel.task_counts == "TaskCountsResult":
        assert result.task_slot_counts is not None, dump(result)
        counts = result.task_counts
    else:
        counts = result
    return (counts.active, counts.running, counts.completed, counts.succeeded, counts.failed)


def check_execution(rel, info, exit_code, what):
    """exit code, and result/failure_info where the release has them."""
    assert info is not None, what
    assert info.exit_code == exit_code, what
    if rel.has_result:
        assert lower(info.result) == ("success" if exit_code == 0 else "failure"), what
        if exit_code == 0:
            assert info.failure_info is None, what
        else:
            assert info.failure_info.code == "FailureExitCode" and lower(info.failure_info.category) == "usererror", what
    else:
        # Before 2017-05-01.5.0 an exit-code failure shows only its exit code.
        assert info.scheduling_error is None, what


# -- HTTP trace: the last exchanges, for assertion failures ---------------------------------


class HttpTrace:
    """Records the last few HTTP exchanges of the SDK (every release sends through requests)."""

    def __init__(self, keep=6):
        self.exchanges = collections.deque(maxlen=keep)

    def install(self, monkeypatch):
        original = requests.Session.send
        trace = self

        def send(session, request, **kwargs):
            response = original(session, request, **kwargs)
            trace.exchanges.append((request, response))
            return response

        monkeypatch.setattr(requests.Session, "send", send)

    @staticmethod
    def render(request, response):
        body = request.body
        if isinstance(body, bytes):
            body = body.decode("utf-8", "replace")
        # Rendered after the SDK is done: older msrest streams every response, so its body
        # is readable only once the SDK has consumed it (file downloads stay unreadable).
        if getattr(response, "_content_consumed", False) and response._content not in (False, None):
            answer = response.content.decode("utf-8", "replace")[:1500]
        else:
            answer = "(streamed body, not kept)"
        return "%s %s\n  request body: %s\n  -> %s %s\n  response body: %s" % (
            request.method, request.url, (body or "")[:1500], response.status_code, response.reason, answer)

    def text(self):
        return "\n".join(self.render(*e) for e in self.exchanges) or "(no HTTP exchange recorded)"


# -- the scenario ------------------------------------------------------------------------------


@pytest.mark.timeout(240)
def test_sdk_release_scenario(openbatch, monkeypatch):
    version, rel = installed_release()
    trace = HttpTrace()
    trace.install(monkeypatch)
    client = make_client(rel, openbatch.url, openbatch.account, openbatch.key)
    sent_version = getattr(client, "api_version", None) or getattr(client.config, "api_version", None)
    assert sent_version == rel.api_version, "azure-batch %s speaks %s, RELEASES says %s" % (
        version,
        sent_version,
        rel.api_version,
    )
    pool_id = unique("sc-pool")
    job_id = unique("sc-job")
    try:
        run_scenario(rel, client, pool_id, job_id)
    except AssertionError as e:
        raise AssertionError("%s\n\nlast HTTP exchanges (azure-batch %s, api-version %s):\n%s" % (
            e, version, rel.api_version, trace.text())) from None
    finally:
        delete_quietly(client.job.delete, job_id)
        delete_quietly(client.pool.delete, pool_id)


def run_scenario(rel, client, pool_id, job_id):
    # -- image and pool
    sku_id, ref = linux_image(rel, client)
    client.pool.add(pool_add_parameter(rel, pool_id, sku_id, ref, nodes=2, slots=2))
    pool = client.pool.get(pool_id)
    assert getattr(pool, rel.target_dedicated) == 2, "pool.%s: %s" % (rel.target_dedicated, dump(pool))
    assert getattr(pool, rel.slots) == 2, "pool.%s: %s" % (rel.slots, dump(pool))
    assert pool.virtual_machine_configuration.node_agent_sku_id == sku_id, dump(pool)
    assert pool.start_task is not None and pool.start_task.command_line == START_TASK, dump(pool)
    assert pool.start_task.wait_for_success is not False, dump(pool)

    def idle_nodes():
        nodes = list(client.compute_node.list(pool_id))
        ok = len(nodes) == 2 and all(lower(n.state) == "idle" for n in nodes)
        return ok, (nodes if ok else [(n.id, lower(n.state)) for n in nodes])

    nodes = wait_until("2 idle nodes in pool %s" % pool_id, idle_nodes, timeout=60)
    for node in nodes:
        info = node.start_task_info
        assert info is not None and lower(info.state) == "completed", dump(node)
        check_execution(rel, info, 0, dump(node))
        data = b"".join(client.file.get_from_compute_node(pool_id, node.id, "shared/ok.txt"))
        assert data == b"ok\n", "shared/ok.txt on %s: %r" % (node.id, data)

    # -- job and tasks
    client.job.add(batchmodels.JobAddParameter(id=job_id, pool_info=batchmodels.PoolInformation(pool_id=pool_id)))
    job = client.job.get(job_id)
    assert job.pool_info.pool_id == pool_id, dump(job)

    client.task.add(job_id, model(batchmodels.TaskAddParameter, id="single", command_line=ECHO_TASK, **non_elevated(rel)))
    ids = ["echo-%02d" % i for i in range(TASKS)]
    result = client.task.add_collection(
        job_id, [batchmodels.TaskAddParameter(id=tid, command_line=ECHO_TASK) for tid in ids]
    )
    assert sorted(r.task_id for r in result.value) == ids, dump(result)
    bad = [r for r in result.value if lower(r.status) != "success"]
    assert not bad, "add_collection failures: %s" % [dump(r) for r in bad]

    client.task.add(job_id, batchmodels.TaskAddParameter(id="exit3", command_line='/bin/sh -c "echo failing; exit 3"'))
    all_ids = sorted(ids + ["single", "exit3"])

    def completed():
        tasks = list(client.task.list(job_id))
        states = collections.Counter(lower(t.state) for t in tasks)
        ok = sorted(t.id for t in tasks) == all_ids and states == {"completed": len(all_ids)}
        return ok, (tasks if ok else "%d tasks, by state %s" % (len(tasks), dict(states)))

    tasks = wait_until("%d completed tasks in %s" % (len(all_ids), job_id), completed, timeout=60)
    for t in tasks:
        failing = t.id == "exit3"
        check_execution(rel, t.execution_info, 3 if failing else 0, dump(t))
        assert t.node_info is not None and t.node_info.pool_id == pool_id, dump(t)
        out = b"".join(client.file.get_from_task(job_id, t.id, "stdout.txt"))
        want_out = b"failing\n" if failing else ("%s\n" % t.id).encode()
        assert out == want_out, "stdout.txt of %s: %r" % (t.id, out)

    # -- a $filter list
    failed = list(client.task.list(job_id, task_list_options=batchmodels.TaskListOptions(filter="executionInfo/exitCode eq 3")))
    assert [t.id for t in failed] == ["exit3"], [t.id for t in failed]

    # -- task counts
    want = (0, 0, len(all_ids), len(all_ids) - 1, 1)
    if rel.task_counts is not None:
        wait_until(
            "task counts %s of %s" % (want, job_id),
            lambda: (lambda c: (c == want, c))(task_counts(rel, client, job_id)),
            timeout=10,
        )
    else:
        task_counts(rel, client, job_id)

    # -- a missing job
    with pytest.raises(BatchErrorException) as exc:
        client.job.get(unique("no-such-job"))
    assert exc.value.response.status_code == 404, http_details(exc.value)
    assert exc.value.error is not None and exc.value.error.code == "JobNotFound", http_details(exc.value)

    # -- resize to one node
    client.pool.resize(pool_id, resize_parameter(rel, 1))

    def resized():
        p = client.pool.get(pool_id)
        current = getattr(p, rel.current_dedicated)
        ok = current == 1 and lower(p.allocation_state) == "steady"
        return ok, "%s=%s %s=%s allocation_state=%s" % (
            rel.target_dedicated, getattr(p, rel.target_dedicated), rel.current_dedicated, current, p.allocation_state)

    wait_until("pool %s resized to 1 node" % pool_id, resized, timeout=60)
    assert len(list(client.compute_node.list(pool_id))) == 1

    # -- delete job and pool
    client.job.delete(job_id)
    client.pool.delete(pool_id)
    wait_until("pool %s deleted" % pool_id, lambda: (lambda e: (e is False, e))(client.pool.exists(pool_id)), timeout=30)
