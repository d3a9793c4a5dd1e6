"""Small helpers shared by the conformance tests (SDK calls only)."""

import json
import time
import uuid

import azure.batch.models as batchmodels


def http_details(exc):
    """Request and response of an SDK error, for the failure report."""
    response = getattr(exc, "response", None)
    if response is None:
        # CreateTasksErrorException from the SDK's patched task.add_collection
        parts = []
        for err in list(getattr(exc, "errors", None) or [])[:3]:
            parts.append(http_details(err) or repr(err))
        for failed in list(getattr(exc, "failure_tasks", None) or [])[:5]:
            parts.append("task add failure: %s" % dump(failed))
        return "\n".join(parts) or None
    lines = []
    req = getattr(response, "request", None)
    if req is not None:
        lines.append("request:  %s %s" % (req.method, req.url))
        body = req.body
        if isinstance(body, bytes):
            body = body.decode("utf-8", "replace")
        if body:
            lines.append("request body: %s" % body[:2000])
    lines.append("response: %s %s" % (response.status_code, getattr(response, "reason", "")))
    for k, v in getattr(response, "headers", {}).items():
        lines.append("  %s: %s" % (k, v))
    try:
        text = response.text
        if callable(text):  # azure-core responses (15.x clients): text() is a method
            text = text()
    except Exception:
        text = "(body not readable)"
    lines.append("response body: %s" % (text or "")[:4000])
    err = getattr(exc, "error", None)
    if err is not None:
        lines.append("SDK parsed error: code=%r message=%r" % (getattr(err, "code", None), getattr(getattr(err, "message", None), "value", None)))
    return "\n".join(lines)


def expect_error(status, code, fn, *args, **kwargs):
    """Calls an SDK operation that must fail with the msrest clients' BatchErrorException
    (status, code); returns the exception."""
    import pytest
    from azure.batch.models import BatchErrorException

    with pytest.raises(BatchErrorException) as exc:
        fn(*args, **kwargs)
    err = exc.value
    assert err.response.status_code == status, http_details(err)
    assert err.error is not None and err.error.code == code, http_details(err)
    return err


def unique(prefix):
    return "%s-%s" % (prefix, uuid.uuid4().hex[:8])


def dump(model):
    """A model (msrest, or a 15.x MutableMapping of its wire JSON) as JSON text, for assertion
    messages."""
    if model is None:
        return "None"
    try:
        return json.dumps(model.as_dict(), default=str, sort_keys=True)
    except Exception:
        try:
            return json.dumps(dict(model), default=str, sort_keys=True)
        except Exception:
            return repr(model)


def lower(value):
    """An enum member or string as lower-case text: releases differ in enum spellings
    (waitingForStartTask / waitingforstarttask; 15.x members are lower-case), and clients fall
    back to a plain string for values they do not know."""
    if value is None:
        return None
    return str(getattr(value, "value", value)).lower()


def wait_until(what, probe, timeout, interval=0.5):
    """Call probe() until it returns a truthy value; fail after timeout seconds.

    probe returns (done, last_seen); last_seen goes into the failure message.
    """
    deadline = time.monotonic() + timeout
    last = None
    while True:
        done, last = probe()
        if done:
            return last
        if time.monotonic() >= deadline:
            raise AssertionError("timed out after %ss waiting for %s; last seen: %s" % (timeout, what, last))
        time.sleep(interval)


def pick_linux_image(client):
    """An ubuntu image from account.list_supported_images(), 22.04 preferred."""
    images = list(client.account.list_supported_images())
    assert images, "account.list_supported_images() returned nothing"
    linux = [
        i
        for i in images
        if str(i.os_type).lower().endswith("linux") and "ubuntu" in (i.node_agent_sku_id or "").lower()
    ]
    assert linux, "no Linux ubuntu image among %s" % [dump(i) for i in images]
    linux.sort(key=lambda i: (i.node_agent_sku_id != "batch.node.ubuntu 22.04", i.node_agent_sku_id))
    return linux[0]


def vm_config(image):
    ref = image.image_reference
    return batchmodels.VirtualMachineConfiguration(
        image_reference=batchmodels.ImageReference(
            publisher=ref.publisher, offer=ref.offer, sku=ref.sku, version=ref.version or "latest"
        ),
        node_agent_sku_id=image.node_agent_sku_id,
    )


def add_pool(client, pool_id, image, nodes, task_slots_per_node=None, start_task=None):
    client.pool.add(
        batchmodels.PoolAddParameter(
            id=pool_id,
            vm_size="standard_d2_v3",
            virtual_machine_configuration=vm_config(image),
            target_dedicated_nodes=nodes,
            task_slots_per_node=task_slots_per_node,
            start_task=start_task,
        )
    )


def wait_nodes(client, pool_id, count, state, timeout):
    """Wait until the pool has exactly `count` nodes, all in `state`."""

    def probe():
        nodes = list(client.compute_node.list(pool_id))
        states = [(n.id, str(getattr(n.state, "value", n.state))) for n in nodes]
        ok = len(nodes) == count and all(n.state == state for n in nodes)
        return ok, (nodes if ok else states)

    return wait_until("%d node(s) of pool %s in state %s" % (count, pool_id, state), probe, timeout)


def wait_tasks_completed(client, job_id, expected, timeout, interval=0.5):
    """Wait until task.list shows `expected` tasks, all completed; return them."""

    def probe():
        tasks = list(client.task.list(job_id))
        done = [t for t in tasks if t.state == batchmodels.TaskState.completed]
        ok = len(tasks) == expected and len(done) == expected
        summary = {}
        for t in tasks:
            key = str(getattr(t.state, "value", t.state))
            summary[key] = summary.get(key, 0) + 1
        return ok, (tasks if ok else "%d tasks listed, by state %s" % (len(tasks), summary))

    return wait_until("%d completed tasks in job %s" % (expected, job_id), probe, timeout, interval)


def wait_task_completed(client, job_id, task_id, timeout):
    def probe():
        t = client.task.get(job_id, task_id)
        return t.state == batchmodels.TaskState.completed, t if t.state == batchmodels.TaskState.completed else dump(t)

    return wait_until("task %s/%s completed" % (job_id, task_id), probe, timeout)


def read_task_file(client, job_id, task_id, path):
    return b"".join(client.file.get_from_task(job_id, task_id, path))


def delete_quietly(fn, *args):
    try:
        fn(*args)
    except Exception:
        pass
