"""Fixtures and helpers for the azure-batch 15.1.0 tests (the TypeSpec-generated client).

azure-batch 15.x is a different client from the msrest releases the tests one level up are
written for: `azure.batch.BatchClient(endpoint, credential=AzureNamedKeyCredential(account, key))`
on azure-core, api-version `2025-06-01`, flat operation names (create_pool, list_tasks,
begin_delete_pool, ...) and new model names (BatchPoolCreateOptions, BatchTaskCreateOptions, ...).
The service itself comes from the `openbatch` fixture of ../conftest.py.

scripts/test-all.sh runs this directory with the 15.1.0 venv only; under another release these
modules are not collected (they need azure.batch.BatchClient).
"""

import pytest

from batchclientutil import HttpTrace, make_batch_client


def _has_batch_client():
    try:
        from azure.batch import BatchClient  # noqa: F401
    except ImportError:
        return False
    return True


if not _has_batch_client():
    collect_ignore_glob = ["test_*.py"]


@pytest.fixture
def http_trace():
    return HttpTrace()


@pytest.fixture
def client(openbatch, http_trace):
    c = make_batch_client(
        openbatch.url,
        openbatch.account,
        openbatch.key,
        trace=http_trace,
        retry_total=0,
        connection_timeout=10,
        read_timeout=60,
    )
    yield c
    c.close()
    # The Airflow reproduction keeps the client's default retries: no 5xx may hide behind them.
    assert not http_trace.server_errors, "5xx answers: %s" % http_trace.server_errors


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if not report.failed:
        return
    trace = getattr(item, "funcargs", {}).get("http_trace")
    if isinstance(trace, HttpTrace):
        report.sections.append(("last HTTP exchanges of azure-batch 15.x", trace.text()))
    if call.excinfo is not None:
        exc = call.excinfo.value
        response = getattr(exc, "response", None)
        if response is not None and hasattr(response, "request"):
            report.sections.append(("failed HTTP exchange", HttpTrace.render(response.request, response)))


