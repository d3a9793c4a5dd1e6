"""Replay of recorded Azure Batch traffic against openbatch (used by test_replay.py).

Three parts:

* `SignedHttp`: plain signed HTTP (no SDK in the request path). A request is
  sent as recorded (method, path with its percent-encoding, api-version,
  query, JSON body) and signed with SharedKey as the official SDKs sign: the
  verb, the eleven standard headers (Content-Length and Content-Type exactly
  as sent), the ocp-* headers (lower-cased, sorted), then `/<account><path>`
  (path as sent) and one `\\n<name>:<value>` line per query parameter (sorted,
  values decoded).
* `RULES` / `HEADER_RULES`: the one table of what is compared and what is not.
* `replay()`: sends a recording step by step and compares every answer.
"""

import base64
import contextlib
import email.utils
import fnmatch
import hashlib
import hmac
import json
import re
import time
import urllib.parse

import requests

# ---------------------------------------------------------------------------
# The comparison rules
# ---------------------------------------------------------------------------
#
# Every property of a recorded JSON body must be present in openbatch's answer
# with the same JSON type (object, array, string, number, boolean). Its VALUE
# is compared too, unless a rule below says otherwise. A rule is
# (scope, path, kind, why):
#
#   scope  the entity of the answer, from the fragment of its odata.metadata
#          (`#pools/@Element` -> "pools", `...Entities.AutoScaleRun` ->
#          "AutoScaleRun", errors -> "errors"); "*" is any; fnmatch patterns.
#   path   fnmatch pattern for the end of the property path (object keys
#          joined with ".", list levels skipped): "executionInfo.poolId"
#          matches the poolId of any executionInfo object.
#   kind   VOLATILE  value differs by nature (times, ETags, generated ids)
#          TIMING    value depends on when the request happened to come
#                    (states, counts); inside a polling run the properties that
#                    moved during the recorded run are still waited for and
#                    compared exactly (see replay()).
#          ENV       value depends on the environment (IPs, ports, agent
#                    version, OS error texts, file contents)
#          SUBTREE   environment-specific object: presence and type only, its
#                    contents are not compared
#          URL       the host is ignored, the path is compared (after the
#                    recorded node ids are mapped to openbatch's)
#          ODATA     only the `#<entity>` fragment of odata.metadata is compared
#          ERRTEXT   only the first line of an error message (before
#                    `\nRequestId:`) is compared
#          CATALOGUE list of an environment's catalogue (supported images):
#                    recorded items missing from openbatch's list are noted, not
#                    mismatches; common items are compared in full
#
# The first matching rule wins. Strings that look like ISO-8601 timestamps are
# VOLATILE wherever they are. Extra properties openbatch returns beyond the
# recording are reported as notes, never as mismatches (whether the recorded
# api-version has them is not checked here).

VOLATILE, TIMING, ENV, SUBTREE, URL, ODATA, ERRTEXT, CATALOGUE, COMPARE = (
    "volatile", "timing", "env", "subtree", "url", "odata", "errtext", "catalogue", "compare")
VALUE_IGNORED = (VOLATILE, TIMING, ENV)

RULES = [
    # scope            path                                   kind       why
    ("*",              "odata.metadata",                      ODATA,     "account URL differs; '#<entity>' compared"),
    ("*",              "odata.nextLink",                      URL,       "host and $skiptoken are service-specific"),
    ("*",              "url",                                 URL,       "account host differs"),
    ("*",              "nodeUrl",                             URL,       "account host differs"),
    ("*",              "taskRootDirectoryUrl",                URL,       "account host differs"),
    ("*",              "eTag",                                VOLATILE,  "generated"),
    ("*",              "*Time",                               VOLATILE,  "time"),
    ("*",              "lastModified",                        VOLATILE,  "time"),
    ("*",              "timestamp",                           VOLATILE,  "time"),
    ("errors",         "message.value",                       ERRTEXT,   "carries RequestId and Time"),
    ("errors",         "values[key=Reason].value",            ENV,       "a Reason is prose (the recorded one names the test's subscription); keys and other values are compared"),
    ("pools",          "dataDisks.caching",                   ENV,       "documented conflict: the seed makes readwrite the default from 2018-08-01.7.0 and openbatch follows it; the 2022 recording shows none"),
    ("jobs",           "executionInfo.poolId",                VOLATILE,  "auto pools get a generated GUID id"),
    ("nodes",          "state",                               TIMING,    "node boot progress"),
    ("nodes",          "totalTasksRun",                       TIMING,    "depends on what ran when"),
    ("nodes",          "totalTasksSucceeded",                 TIMING,    "depends on what ran when"),
    ("nodes",          "runningTasksCount",                   TIMING,    "depends on what ran when"),
    ("nodes",          "runningTaskSlotsCount",               TIMING,    "depends on what ran when"),
    ("nodes",          "ipAddress",                           ENV,       "network of the machine"),
    ("nodes",          "endpointConfiguration",               SUBTREE,   "public IPs, FQDNs and ports of the deployment"),
    ("nodes",          "nodeAgentInfo.version",               ENV,       "agent build"),
    ("nodes",          "virtualMachineInfo.imageReference.exactVersion", ENV, "image build"),
    ("pools",          "allocationState",                     TIMING,    "allocation progress"),
    ("pools",          "currentDedicatedNodes",               TIMING,    "allocation progress"),
    ("pools",          "currentLowPriorityNodes",             TIMING,    "allocation progress"),
    ("tasks",          "state",                               TIMING,    "scheduling progress"),
    ("tasks",          "failureInfo.details.value",           ENV,       "operating system's error text"),
    ("files",          "properties.contentLength",            ENV,       "output of a command run on another OS"),
    ("UploadBatchServiceLogsResult", "virtualDirectoryName",  VOLATILE,  "holds the request id"),
    ("UploadBatchServiceLogsResult", "numberOfFilesUploaded", ENV,       "log files of the machine"),
    ("poolstats",      "*Stats.*",                            TIMING,    "lifetime statistics are aggregated periodically"),
    ("jobstats",       "*",                                   TIMING,    "lifetime statistics are aggregated periodically"),
    ("supportedimages", "value",                              CATALOGUE, "image catalogue of the deployment"),
]

# Rules that hold for one recording only, tried before RULES while it is
# replayed (recording_rules()): a value that depends on timing in that recording
# and not in the others.
RECORDING_RULES = {
    "scale_pools": [
        ("pools", "targetDedicatedNodes", TIMING,
         "Disable AutoScale 3 s after Enable stops the autoscale resize where allocation got: "
         "the service had allocated none of the formula's 2 nodes (target back to 0); "
         "openbatch nodes are up within milliseconds (target stays 2)"),
    ],
}


@contextlib.contextmanager
def recording_rules(name):
    """RULES with the recording's own rules (RECORDING_RULES) first, for a with-block."""
    extra = RECORDING_RULES.get(name, [])
    RULES[:0] = extra
    try:
        yield
    finally:
        del RULES[:len(extra)]


# Response headers: which are checked and how. Others (date, server,
# request-id, content-length, transfer-encoding, ...) are ignored.
HEADER_RULES = {
    "etag": "presence",
    "last-modified": "presence",
    "location": "presence",         # Job_Add's recorded Location names job-1 (artefact)
    "dataserviceid": "presence",    # recorded with unscrubbed account names
    "dataserviceversion": "value",
    "content-type": "family",       # media type before ';'
    "ocp-batch-file-isdirectory": "value",
    "ocp-batch-file-mode": "value",
    "ocp-batch-file-url": "presence",  # holds the real account host
}

# Identity keys used to pair list items (first key present in every item).
LIST_IDENTITY = ("id", "name", "poolId", "key", "thumbprint")

ISO_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")

# Statuses that cannot change by waiting: a polling run stops at once on them.
FINAL_ERROR_STATUSES = {400, 401, 403, 405, 413, 501}


def rule_for(scope, keys, where=""):
    # Keys are joined with "." (a key may itself hold a dot: "odata.metadata");
    # a rule path matches the whole joined path or a "."-separated suffix of it.
    # A rule path naming a list item (`values[key=Reason].value`) is matched
    # literally against the end of the labelled location instead.
    joined = ".".join(keys)
    for r_scope, r_path, kind, _why in RULES:
        if not fnmatch.fnmatchcase(scope, r_scope):
            continue
        if "[" in r_path:
            if where == r_path or where.endswith("." + r_path):
                return kind
        elif fnmatch.fnmatchcase(joined, r_path) or fnmatch.fnmatchcase(joined, "*." + r_path):
            return kind
    return COMPARE


def scope_of(body):
    if not isinstance(body, dict):
        return ""
    meta = body.get("odata.metadata")
    if not isinstance(meta, str) or "#" not in meta:
        return ""
    frag = meta.split("#", 1)[1].split("/", 1)[0]
    if frag.endswith(".errors"):
        return "errors"
    return frag.rsplit(".", 1)[-1] if frag.startswith("Microsoft.") else frag


def json_type(v):
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    return "object"


def short(v, n=80):
    text = json.dumps(v, ensure_ascii=False)
    return text if len(text) <= n else text[: n - 3] + "..."


def url_path(u):
    return urllib.parse.urlsplit(u).path


# ---------------------------------------------------------------------------
# Body and header comparison
# ---------------------------------------------------------------------------


class Comparison:
    def __init__(self):
        self.mismatches = []  # one-line reasons
        self.extras = []      # property paths openbatch adds
        self.notes = []       # informational (catalogue items, extra headers)


def _identity(items):
    if not items or not all(isinstance(i, dict) for i in items):
        return None
    for key in LIST_IDENTITY:
        if all(key in i for i in items):
            return key
    return None


def _image_key(item):
    ref = item.get("imageReference") if isinstance(item, dict) else None
    if not isinstance(ref, dict):
        return None
    return tuple(str(ref.get(k, "")).lower() for k in ("publisher", "offer", "sku"))


def pair_items(rec_list, got_list, kind):
    """[(label, recorded item, live item or None)], and the unpaired live items."""
    if kind == CATALOGUE:
        live = {_image_key(i): i for i in got_list}
        pairs = [("[%s]" % "/".join(_image_key(r) or ("?",)), r, live.get(_image_key(r))) for r in rec_list]
        used = {id(p[2]) for p in pairs if p[2] is not None}
        return pairs, [g for g in got_list if id(g) not in used]
    key = _identity(rec_list)
    if key and all(isinstance(g, dict) and key in g for g in got_list):
        live = {}
        for g in got_list:
            live.setdefault(str(g[key]), g)
        pairs = [("[%s=%s]" % (key, r[key]), r, live.get(str(r[key]))) for r in rec_list]
        used = {id(p[2]) for p in pairs if p[2] is not None}
        return pairs, [g for g in got_list if id(g) not in used]
    pairs = [("[%d]" % i, r, got_list[i] if i < len(got_list) else None) for i, r in enumerate(rec_list)]
    return pairs, got_list[len(rec_list):]


def compare_value(rec, got, scope, keys, where, out):
    kind = rule_for(scope, keys, where) if keys else COMPARE
    if json_type(rec) != json_type(got):
        out.mismatches.append("wrong type at %s: recorded %s, got %s" % (where or "body", json_type(rec), json_type(got)))
        return
    if kind == SUBTREE:
        return
    if isinstance(rec, dict):
        for k, v in rec.items():
            sub = "%s.%s" % (where, k) if where else k
            if k not in got:
                out.mismatches.append("missing property %s" % sub)
            else:
                compare_value(v, got[k], scope, keys + [k], sub, out)
        for k in got:
            if k not in rec:
                out.extras.append("%s.%s" % (where, k) if where else k)
        return
    if isinstance(rec, list):
        if rec and all(not isinstance(r, (dict, list)) for r in rec):
            if kind not in VALUE_IGNORED and sorted(map(json.dumps, rec)) != sorted(map(json.dumps, got)):
                out.mismatches.append("value differs at %s: recorded %s vs got %s" % (where, short(rec), short(got)))
            return
        pairs, unpaired = pair_items(rec, got, kind)
        not_offered = []
        for label, r, g in pairs:
            sub = where + label
            if g is None:
                if kind == CATALOGUE:
                    not_offered.append(label)
                else:
                    out.mismatches.append("missing item %s" % sub)
                continue
            compare_value(r, g, scope, keys, sub, out)
        if not_offered:
            out.notes.append("%s: %d of %d recorded catalogue items are not offered (environment-specific), %d common ones compared"
                             % (where, len(not_offered), len(rec), len(rec) - len(not_offered)))
        if kind != CATALOGUE:
            key = _identity(unpaired)
            for i, g in enumerate(unpaired):
                out.extras.append("%s[+%s]" % (where, "%s=%s" % (key, g[key]) if key else "item %d" % (len(rec) + i)))
        return
    # scalars
    if isinstance(rec, str) and ISO_TIME.match(rec):
        return
    if kind in VALUE_IGNORED:
        return
    if kind == URL:
        a, b = url_path(rec), url_path(got)
    elif kind == ODATA:
        a, b = rec.split("#", 1)[-1], got.split("#", 1)[-1]
    elif kind == ERRTEXT:
        a, b = rec.split("\nRequestId:", 1)[0], got.split("\nRequestId:", 1)[0]
    else:
        a, b = rec, got
    if a != b:
        out.mismatches.append("value differs at %s: recorded %s vs got %s" % (where or "body", short(a), short(b)))


def compare_headers(rec_headers, got_headers, out):
    for name, how in HEADER_RULES.items():
        if name not in rec_headers:
            if name in got_headers and how == "presence":
                out.notes.append("extra header %s" % name)
            continue
        if name not in got_headers:
            out.mismatches.append("missing header %s" % name)
            continue
        a, b = rec_headers[name], got_headers[name]
        if how == "family":
            a, b = a.split(";")[0].strip().lower(), b.split(";")[0].strip().lower()
        if how in ("value", "family") and a != b:
            out.mismatches.append("header %s differs: recorded %r vs got %r" % (name, a, b))


def compare_answer(rec, live):
    """Compare one recorded interaction with openbatch's Response."""
    out = Comparison()
    if rec["status"] != live.status:
        detail = ""
        if isinstance(live.body, dict) and "code" in live.body:
            msg = live.body.get("message", {})
            msg = msg.get("value", "") if isinstance(msg, dict) else str(msg)
            reason = [v.get("value") for v in live.body.get("values", []) if isinstance(v, dict) and v.get("key") == "Reason"]
            detail = " (%s: %s%s)" % (live.body["code"], msg.split("\n")[0], "; " + reason[0] if reason else "")
        out.mismatches.append("status differs: recorded %s vs got %s%s" % (rec["status"], live.status, detail))
        return out
    compare_headers(rec["response_headers"], live.headers, out)
    body = rec["response_body"]
    if body is None:
        if live.body not in (None, ""):
            out.notes.append("answer has a body where the recording has none")
    elif isinstance(body, str):
        # Non-JSON content (the RDP file): environment-specific, must not be empty.
        if not live.raw:
            out.mismatches.append("missing body (recorded %d characters)" % len(body))
    else:
        compare_value(body, live.body, scope_of(body), [], "", out)
    return out


# ---------------------------------------------------------------------------
# Signed HTTP
# ---------------------------------------------------------------------------

SIGNED_HEADERS = (
    "content-encoding",
    "content-language",
    "content-length",
    "content-md5",
    "content-type",
    "date",
    "if-modified-since",
    "if-match",
    "if-none-match",
    "if-unmodified-since",
    "range",
)

JSON_CONTENT_TYPE = "application/json; odata=minimalmetadata; charset=utf-8"


def string_to_sign(method, path, query, headers, account):
    lower = {k.lower(): str(v) for k, v in headers.items() if v not in (None, "")}
    parts = [method.upper()]
    parts.extend(lower.get(h, "") for h in SIGNED_HEADERS)
    text = "\n".join(parts) + "\n"
    for name in sorted(k for k in lower if k.startswith("ocp-")):
        text += "%s:%s\n" % (name, lower[name])
    text += "/%s%s" % (account, path)
    for name in sorted(query, key=lambda n: n.lower()):
        value = query[name]
        if value not in (None, ""):
            text += "\n%s:%s" % (name.lower(), value)
    return text


def sign(key_b64, text):
    digest = hmac.new(base64.b64decode(key_b64), text.encode("utf-8"), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


class Response:
    def __init__(self, status, headers, body_bytes):
        self.status = status
        self.headers = {k.lower(): v for k, v in headers.items()}
        self.raw = body_bytes or b""
        self.body = None
        if body_bytes:
            text = body_bytes.decode("utf-8", "replace")
            if "json" in self.headers.get("content-type", ""):
                try:
                    self.body = json.loads(text)
                except ValueError:
                    self.body = text
            else:
                self.body = text


class SignedHttp:
    def __init__(self, base_url, account, key, timeout=30):
        self.base_url = base_url.rstrip("/")
        self.account = account
        self.key = key
        self.timeout = timeout
        self.session = requests.Session()

    def request(self, method, path, api_version, query=None, body=None):
        """Send one request; `path` goes out exactly as given."""
        method = method.upper()
        params = {"api-version": api_version} if api_version else {}
        params.update(query or {})
        headers = {"ocp-date": email.utils.formatdate(usegmt=True)}
        data = None
        if body is not None:
            data = json.dumps(body).encode("utf-8")
            headers["Content-Type"] = JSON_CONTENT_TYPE
            headers["Content-Length"] = str(len(data))
        elif method not in ("GET", "HEAD"):
            headers["Content-Length"] = "0"  # as the SDKs send and sign it
        headers["Authorization"] = "SharedKey %s:%s" % (
            self.account, sign(self.key, string_to_sign(method, path, params, headers, self.account)))
        # Names literal, values fully percent-encoded (as msrest does).
        qs = "&".join("%s=%s" % (k, urllib.parse.quote(str(v), safe="")) for k, v in params.items())
        url = self.base_url + path + ("?" + qs if qs else "")
        prepared = self.session.prepare_request(requests.Request(method, url, headers=headers, data=data))
        prepared.url = url  # keep the recorded path encoding untouched
        if data is None and method in ("GET", "HEAD"):
            prepared.headers.pop("Content-Length", None)
        r = self.session.send(prepared, timeout=self.timeout, allow_redirects=False)
        return Response(r.status_code, r.headers, r.content)

    def must(self, method, path, api_version, body=None, query=None):
        """A setup request that has to succeed."""
        r = self.request(method, path, api_version, query, body)
        if r.status >= 300:
            raise AssertionError("setup %s %s failed: %s %s" % (method, path, r.status, short(r.body, 600)))
        return r


# ---------------------------------------------------------------------------
# Replay
# ---------------------------------------------------------------------------


def load_recording(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def _request_key(it):
    return (it["method"], it["path"], json.dumps(it["query"], sort_keys=True),
            json.dumps(it["request_body"], sort_keys=True))


def group_steps(interactions):
    """Consecutive identical requests (a polling loop) become one step."""
    steps = []
    for it in interactions:
        if steps and _request_key(steps[-1][-1]) == _request_key(it):
            steps[-1].append(it)
        else:
            steps.append([it])
    return steps


class IdMap:
    """Recorded node ids -> openbatch's, learnt from node lists by position."""

    def __init__(self):
        self.map = {}

    def learn(self, rec_body, live_body):
        if scope_of(rec_body) != "nodes" or not isinstance(live_body, dict):
            return
        rec_items = rec_body.get("value") if "value" in rec_body else [rec_body]
        got_items = live_body.get("value") if "value" in live_body else [live_body]
        if not isinstance(rec_items, list) or not isinstance(got_items, list):
            return
        taken = set(self.map.values())
        free = [g.get("id") for g in got_items if isinstance(g, dict) and g.get("id") not in taken]
        for r in rec_items:
            rid = r.get("id") if isinstance(r, dict) else None
            if rid and rid not in self.map and free:
                self.map[rid] = free.pop(0)

    def apply(self, value):
        if not self.map:
            return value
        if isinstance(value, str):
            for a, b in self.map.items():
                value = value.replace(a, b)
            return value
        if isinstance(value, list):
            return [self.apply(v) for v in value]
        if isinstance(value, dict):
            return {self.apply(k): self.apply(v) for k, v in value.items()}
        return value


def flatten(body, scope, keys=(), where="", out=None):
    """{display path: (rule kind, leaf value)} of a JSON body (lists by identity)."""
    if out is None:
        out = {}
    kind = rule_for(scope, list(keys)) if keys else COMPARE
    if isinstance(body, dict) and kind != SUBTREE:
        for k, v in body.items():
            flatten(v, scope, keys + (k,), "%s.%s" % (where, k) if where else k, out)
    elif isinstance(body, list) and body and any(isinstance(i, dict) for i in body):
        key = _identity(body)
        for i, item in enumerate(body):
            label = "[%s=%s]" % (key, item[key]) if key else "[%d]" % i
            flatten(item, scope, keys, where + label, out)
    else:
        out[where] = (kind, body)
    return out


def moving_paths(run, ids):
    """Properties whose presence or value changed during a recorded polling run."""
    views = [flatten(ids.apply(it["response_body"]), scope_of(it["response_body"])) for it in run]
    paths = set()
    for v in views:
        paths |= set(v)
    last = views[-1]
    moving = {}
    for p in paths:
        seen = [json.dumps(v[p][1]) if p in v else "absent" for v in views]
        if len(set(seen)) > 1 and p in last:
            moving[p] = last[p]
    return moving


def reached(moving, rec_last, live):
    """Has openbatch's answer reached the moving values of the last recorded answer?"""
    if live.status != rec_last["status"]:
        return False
    if not moving:
        return True
    got = flatten(live.body, scope_of(rec_last["response_body"])) if isinstance(live.body, dict) else {}
    for path, (kind, value) in moving.items():
        if path not in got:
            return False
        if isinstance(value, str) and ISO_TIME.match(value):
            continue
        if kind in (VOLATILE, ENV, SUBTREE, URL):
            continue
        if got[path][1] != value:
            return False
    return True


class StepResult:
    def __init__(self, run, live, comparison, polls, waited):
        self.run = run
        self.first = run[0]
        self.live = live
        self.comparison = comparison
        self.polls = polls
        self.waited = waited

    @property
    def ok(self):
        return not self.comparison.mismatches

    @property
    def label(self):
        it = self.first
        seqs = "%d" % it["seq"] if len(self.run) == 1 else "%d-%d" % (it["seq"], self.run[-1]["seq"])
        q = ""
        if it["query"]:
            q = "?" + "&".join("%s=%s" % kv for kv in it["query"].items())
        return "#%s %s %s%s" % (seqs, it["method"], it["path"], q)


def _fingerprint(live):
    """An answer without its times and ETags, to see whether it still changes."""
    if not isinstance(live.body, (dict, list)):
        return (live.status, live.raw)
    flat = flatten(live.body, scope_of(live.body))
    return (live.status, json.dumps(sorted(
        (p, v) for p, (kind, v) in flat.items()
        if kind != VOLATILE and not (isinstance(v, str) and ISO_TIME.match(v))), default=str))


class LinuxImageFor:
    """Runs a recording's Windows pools on a Linux image, for recordings whose point is not
    the operating system (openbatch runs Linux compute nodes only): request bodies get
    `image` and `sku` in place of a Windows image, and answers show the recorded Windows
    image again, so that the rest of each answer (node counts, states, defaults) is compared
    as it is."""

    def __init__(self, image, sku):
        self.image, self.sku = image, sku
        self.windows = {}  # json of the Linux config -> the recorded Windows config

    def request(self, body):
        vm = body.get("virtualMachineConfiguration") if isinstance(body, dict) else None
        if not isinstance(vm, dict) or "windows" not in str(vm.get("nodeAgentSKUId", "")).lower():
            return body
        body = dict(body)
        linux = dict(vm, imageReference=dict(self.image), nodeAgentSKUId=self.sku)
        body["virtualMachineConfiguration"] = linux
        self.windows[json.dumps(self.image, sort_keys=True)] = (vm["imageReference"], vm["nodeAgentSKUId"])
        return body

    def response(self, body):
        vm = body.get("virtualMachineConfiguration") if isinstance(body, dict) else None
        if not isinstance(vm, dict):
            return body
        found = self.windows.get(json.dumps({k: vm.get("imageReference", {}).get(k) for k in self.image}, sort_keys=True))
        if found:
            vm["imageReference"], vm["nodeAgentSKUId"] = dict(found[0]), found[1]
        return body


def replay(http, interactions, poll_timeout=20.0, poll_interval=0.25, settle=5.0, images=None):
    """Send the recording; a polling run is retried until it reaches the recorded
    final answer, for at most poll_timeout s, or until openbatch's answer has not
    changed for `settle` s (it will not get there then). `images` (a LinuxImageFor)
    runs the recording's Windows pools on Linux."""
    ids = IdMap()
    results = []
    failed_creates = {}  # id -> step label of recorded 201s that openbatch refused
    for run in group_steps(interactions):
        last = run[-1]
        polls = 0
        started = time.monotonic()
        stable_since, previous = started, None
        while True:
            path = ids.apply(last["path"])
            body = ids.apply(last["request_body"])
            if images:
                body = images.request(body)
            live = http.request(last["method"], path, last["api_version"], last["query"], body)
            if images:
                live.body = images.response(live.body)
            polls += 1
            now = time.monotonic()
            if live.status == last["status"]:
                ids.learn(last["response_body"], live.body)
            if len(run) == 1 or live.status in FINAL_ERROR_STATUSES:
                break
            if reached(moving_paths(run, ids), last, live):
                break
            fingerprint = _fingerprint(live)
            if fingerprint != previous:
                stable_since, previous = now, fingerprint
            if now - started >= poll_timeout or now - stable_since >= settle:
                break
            time.sleep(poll_interval)
        waited = time.monotonic() - started
        rec = dict(last)
        rec["response_body"] = ids.apply(last["response_body"])
        comparison = compare_answer(rec, live)
        if len(run) > 1 and live.status == last["status"] and not reached(moving_paths(run, ids), last, live):
            comparison.mismatches.insert(
                0, "polling did not reach the recorded final state (%d polls, %.0f s)" % (polls, waited))
            got = flatten(live.body, scope_of(last["response_body"])) if isinstance(live.body, dict) else {}
            for path, (kind, value) in sorted(moving_paths(run, ids).items()):
                # compare_answer() already reports missing properties and COMPARE values;
                # TIMING values are compared here, where the recording shows where they end.
                if kind == TIMING and path in got and got[path][1] != value:
                    comparison.mismatches.append(
                        "value differs at %s: recorded %s vs got %s (after polling)" % (path, short(value), short(got[path][1])))
        if live.status != last["status"]:
            code = live.body.get("code", "") if isinstance(live.body, dict) else ""
            entity_missing = code.endswith("NotFound") and code != "ResourceNotFound"
            if live.status == 404 and (entity_missing or (last["method"] == "HEAD" and not live.raw)):
                segments = urllib.parse.unquote(last["path"]).split("/")
                causes = [label for rid, label in failed_creates.items() if rid in segments]
                if causes:
                    comparison.mismatches[-1] += " [follows from the failed create %s]" % causes[0]
            body_id = last["request_body"].get("id") if isinstance(last["request_body"], dict) else None
            if last["status"] == 201 and body_id:
                failed_creates.setdefault(body_id, "#%d" % last["seq"])
        results.append(StepResult(run, live, comparison, polls, waited))
    return results
