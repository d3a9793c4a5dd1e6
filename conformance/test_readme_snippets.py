"""The README's Python snippets, run as a new user would paste them.

Each snippet sits in a ```python block after a `<!-- snippet:NAME -->` marker in README.md.
It is run unmodified except for the service's URL, account and key (the README shows the
defaults of `openbatch serve`; the test service has its own port, account and key), in the
venv of the SDK release it is written for, and must print the task's stdout.
"""

import pathlib
import re
import subprocess
import sys

import pytest

README = pathlib.Path(__file__).resolve().parent.parent / "README.md"
DEFAULT_URL = "http://127.0.0.1:10400"
DEFAULT_ACCOUNT = "devbatchaccount1"
DEFAULT_KEY = "6hU4W6CkGy4e9blds2MXyy/s5T5AeLvN4o0jWUaCAAe6JVCX/QdSmPZ6+QgmnlwNX31KlbvUEAM3BNBQ1Mk2cw=="


def snippet(name):
    text = README.read_text()
    m = re.search(r"<!-- snippet:%s -->\s*```python\n(.*?)```" % re.escape(name), text, re.S)
    assert m, "README.md has no python block after <!-- snippet:%s -->" % name
    code = m.group(1)
    for default in (DEFAULT_URL, DEFAULT_ACCOUNT, DEFAULT_KEY):
        assert default in code, "the %s snippet no longer shows %s" % (name, default)
    return code


def run_snippet(openbatch, name):
    code = snippet(name)
    code = code.replace(DEFAULT_URL, openbatch.url).replace(DEFAULT_KEY, openbatch.key)
    code = code.replace(DEFAULT_ACCOUNT, openbatch.account)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, "snippet %s failed:\n%s\n%s" % (name, done.stdout, done.stderr)
    assert re.fullmatch(r"hello from tvm-\S+\n+", done.stdout), repr(done.stdout)


@pytest.mark.sdk_versions("15.1.0")
def test_readme_snippet_for_the_azure_batch_pip_installs_today(openbatch):
    run_snippet(openbatch, "python-15")


@pytest.mark.sdk_versions("13.0.0", "14.2.0")
def test_readme_snippet_for_the_classic_client(openbatch):
    run_snippet(openbatch, "python-classic")
