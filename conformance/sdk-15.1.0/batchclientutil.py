"""Helpers for the azure-batch 15.1.0 tests (azure.batch.BatchClient), SDK calls only."""

import json
import urllib.parse

import azure.batch.models as bm

from batchutil import dump, lower, wait_until

API_VERSION = "2025-06-01"
UBUNTU_SKU = "batch.node.ubuntu 22.04"


def ubuntu_2204(client):
    """The supported Ubuntu 22.04 image (List Supported Images), checked to be a Linux image
    with a full image reference."""
    images = list(client.list_supported_images())
    assert images, "list_supported_images() returned nothing"
    found = [i for i in images if i.node_agent_sku_id == UBUNTU_SKU]
    assert found, "no %r among %s" % (UBUNTU_SKU, sorted({i.node_agent_sku_id for i in images}))
    image = found[0]
    assert lower(image.os_type) == "linux", dump(image)
    ref = image.image_reference
    assert ref is not None and ref.publisher and ref.offer and ref.sku, dump(image)
    return image


def vm_configuration(image):
    """A pool's VirtualMachineConfiguration for a supported image."""
    ref = image.image_reference
    return bm.VirtualMachineConfiguration(
        image_reference=bm.BatchVmImageReference(
            publisher=ref.publisher, offer=ref.offer, sku=ref.sku, version=ref.version or "latest"
        ),
        node_agent_sku_id=image.node_agent_sku_id,
    )


class HttpTrace:
    """The last HTTP exchanges of a BatchClient, kept through azure-core's documented
    `raw_response_hook` (it observes each signed request and its response; it changes nothing)."""

    def __init__(self, keep=8):
        self.keep = keep
        self.exchanges = []
        self.requests = []  # (method, path, api-version) of every request, in order
        self.server_errors = []  # (method, url, status) of every 5xx answer (retries would hide them)

    def __call__(self, pipeline_response):
        request = pipeline_response.http_request
        response = pipeline_response.http_response
        self.exchanges.append((request, response))
        del self.exchanges[: -self.keep]
        url = urllib.parse.urlsplit(request.url)
        query = urllib.parse.parse_qs(url.query)
        self.requests.append((request.method, url.path, ",".join(query.get("api-version", ["(none)"]))))
        if response.status_code >= 500:
            self.server_errors.append((request.method, request.url, response.status_code))

    @staticmethod
    def render(request, response):
        body = request.body if hasattr(request, "body") else None
        if body is None:
            body = getattr(request, "content", None)
        if isinstance(body, bytes):
            body = body.decode("utf-8", "replace")
        elif body is not None and not isinstance(body, str):
            body = json.dumps(body, default=str)
        headers = {k: v for k, v in request.headers.items() if k.lower() != "authorization"}
        try:
            answer = response.text()[:1500]
        except Exception:  # a streamed download not read yet
            answer = "(streamed body, not kept)"
        return "%s %s\n  request headers: %s\n  request body: %s\n  -> %s %s\n  response headers: %s\n  response body: %s" % (
            request.method,
            request.url,
            headers,
            (body or "")[:1500],
            response.status_code,
            getattr(response, "reason", ""),
            dict(response.headers),
            answer,
        )

    def text(self):
        return "\n".join(self.render(*e) for e in self.exchanges) or "(no HTTP exchange recorded)"


def add_idle_pool(client, pool_id, nodes, timeout):
    """Creates a pool of `nodes` Ubuntu 22.04 nodes (standard_d2_v3) and waits until they are
    all idle."""
    client.create_pool(
        bm.BatchPoolCreateOptions(
            id=pool_id,
            vm_size="standard_d2_v3",
            virtual_machine_configuration=vm_configuration(ubuntu_2204(client)),
            target_dedicated_nodes=nodes,
        )
    )

    def idle():
        found = list(client.list_nodes(pool_id))
        ok = len(found) == nodes and all(lower(n.state) == "idle" for n in found)
        return ok, [(n.id, n.state) for n in found]

    wait_until("%d idle nodes in pool %s" % (nodes, pool_id), idle, timeout=timeout, interval=0.3)


def make_batch_client(url, account, key, trace=None, **kwargs):
    """BatchClient as its README shows it, plus test settings: no silent retries of 5xx
    answers (retry_total=0), bounded waits, and the trace hook."""
    from azure.batch import BatchClient
    from azure.core.credentials import AzureNamedKeyCredential

    if trace is not None:
        kwargs["raw_response_hook"] = trace
    return BatchClient(url, credential=AzureNamedKeyCredential(account, key), **kwargs)
