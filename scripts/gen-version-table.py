#!/usr/bin/env python3
"""Generates crates/openbatch/src/versions/table.rs, openbatch's api-version table.

Input: the per-release wire tables in ../shared/azure-batch-wire (which properties, enum values
and operations each official Python SDK release has) and the seed's release notes, which say
what the versions without an SDK release had. Rules for those versions:

* A row first seen in 2016-07-01.3.1 (the oldest release table) existed from 2015-06-01.2.0,
  unless the seed names the version that added it (INTRODUCED below).
* A row first seen in 2017-06-01.5.1 came with 2017-05-01.5.0 (the seed's big 5.0 release),
  except what the seed says 5.1 added (ADDED_IN_5_1).
* A row last seen in 2020-09-01.12.0 also belongs to 2021-01-01.13.0, which has no release and
  no notes of its own: it is taken to have 12.0's shapes.
* Versions after 2022-10-01.16.0 (2023-05-01.17.0 … 2025-06-01) are each read whole from the
  release that speaks them (NEWER below), from the main tables or from newer/.

Usage: scripts/gen-version-table.py [../shared/azure-batch-wire] > crates/openbatch/src/versions/table.rs
"""
import csv
import os
import sys

VERSIONS = [
    "2015-06-01.2.0", "2015-11-01.2.1", "2015-12-01.2.2", "2016-02-01.3.0", "2016-07-01.3.1",
    "2017-01-01.4.0", "2017-05-01.5.0", "2017-06-01.5.1", "2017-09-01.6.0", "2018-03-01.6.1",
    "2018-08-01.7.0", "2018-12-01.8.0", "2019-06-01.9.0", "2019-08-01.10.0", "2020-03-01.11.0",
    "2020-09-01.12.0", "2021-01-01.13.0", "2021-06-01.14.0", "2022-01-01.15.0", "2022-10-01.16.0",
    "2023-05-01.17.0", "2023-11-01.18.0", "2024-02-01.19.0", "2024-07-01.20.0", "2025-06-01",
]
IDX = {v: i for i, v in enumerate(VERSIONS)}
LATEST = len(VERSIONS) - 1
SEED_LATEST = IDX["2022-10-01.16.0"]  # the seed's range ends here; later versions come from NEWER

# What the seed says a version at or before 2016-07-01.3.1 added: (model or "op", name) -> version.
INTRODUCED = {}
def added(version, models, names):
    for m in models:
        for n in names:
            INTRODUCED[(m, n)] = version

added("2016-07-01.3.1", ["CloudPool", "PoolAddParameter", "PoolSpecification"], ["networkConfiguration"])
added("2016-07-01.3.1", ["CloudJob", "JobAddParameter", "JobSpecification", "JobPatchParameter", "JobUpdateParameter"], ["onAllTasksComplete", "onTaskFailure"])
added("2016-07-01.3.1", ["CloudTask", "TaskAddParameter"], ["exitConditions", "applicationPackageReferences"])
added("2016-07-01.3.1", ["JobManagerTask"], ["applicationPackageReferences"])
added("2016-07-01.3.1", ["op"], ["POST /jobs/{jobId}/tasks/{taskId}/reactivate"])
added("2015-12-01.2.2", ["CloudPool", "PoolAddParameter", "PoolSpecification", "PoolPatchParameter", "PoolUpdatePropertiesParameter"], ["applicationPackageReferences"])
added("2015-12-01.2.2", ["CloudTask", "TaskAddParameter"], ["dependsOn"])
added("2015-12-01.2.2", ["CloudJob", "JobAddParameter", "JobSpecification"], ["usesTaskDependencies"])
added("2015-12-01.2.2", ["op"], ["GET /applications", "GET /applications/{applicationId}"])
added("2015-11-01.2.1", ["CloudTask", "TaskAddParameter"], ["multiInstanceSettings"])
added("2015-11-01.2.1", ["op"], ["GET /jobs/{jobId}/tasks/{taskId}/subtasksinfo",
                                 "POST /pools/{poolId}/nodes/{nodeId}/disablescheduling",
                                 "POST /pools/{poolId}/nodes/{nodeId}/enablescheduling"])
added("2015-11-01.2.1", ["ComputeNode"], ["schedulingState"])
added("2015-11-01.2.1", ["ComputeNodeState"], ["offline"])
added("2015-11-01.2.1", ["CloudPool", "PoolAddParameter", "PoolSpecification", "PoolEnableAutoScaleParameter"], ["autoScaleEvaluationInterval"])
added("2015-11-01.2.1", ["ComputeNodeInformation", "JobPreparationTaskExecutionInformation", "JobReleaseTaskExecutionInformation"], ["taskRootDirectory", "taskRootDirectoryUrl"])
added("2015-11-01.2.1", ["TaskInformation"], ["subtaskId"])

# What the seed says 2017-06-01.5.1 (not 5.0) added.
ADDED_IN_5_1 = {("op", "GET /jobs/{jobId}/taskcounts"), ("NetworkConfiguration", "endpointConfiguration"),
                ("ComputeNode", "endpointConfiguration")}
ADDED_MODELS_5_1 = {"TaskCounts", "PoolEndpointConfiguration", "InboundNATPool", "NetworkSecurityGroupRule",
                    "ComputeNodeEndpointConfiguration", "InboundEndpoint"}


def first_index(model, name, first):
    if first == "2016-07-01.3.1":
        return IDX[INTRODUCED.get((model, name), "2015-06-01.2.0")]
    if first == "2017-06-01.5.1":
        if (model, name) in ADDED_IN_5_1 or model in ADDED_MODELS_5_1:
            return IDX[first]
        return IDX["2017-05-01.5.0"]
    return IDX.get(first)


def last_index(last):
    if last not in IDX or IDX[last] > SEED_LATEST:
        return SEED_LATEST  # a version after 16.0: its rows come from NEWER
    if last == "2020-09-01.12.0":
        return IDX["2021-01-01.13.0"]
    return IDX[last]


def rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


# The versions after the seed (2023-05-01.17.0 … 2025-06-01), each read whole from one SDK
# release's wire table: the main tables hold 14.0.0 (17.0) and 14.2.0 (19.0), the complete
# msrest views; newer/ holds 14.1.0 (18.0), 15.1.0b1 (20.0) and 15.1.0 (2025-06-01). newer/'s
# 19.0 rows come from 15.0.0b1, which leaves parts of 19.0 out, so they are not used.
NEWER = {
    "2023-05-01.17.0": "main",
    "2023-11-01.18.0": "newer",
    "2024-02-01.19.0": "main",
    "2024-07-01.20.0": "newer",
    "2025-06-01": "newer",
}

# 2025-06-01 is sent by 15.1.0b2, 15.1.0b3 and 15.1.0, and the GA release dropped more than the
# betas did (newer/diff.md, "The 2025-06-01 releases disagree"): the betas still send task
# authentication tokens and DataDisk.storageAccountType, and the version's REST spec keeps the
# tokens. A server for 2025-06-01 accepts both forms.
EXTRA_2025 = {
    "props": [
        ("AuthenticationTokenSettings", "access", "[AccessScope]"),
        ("TaskAddParameter", "authenticationTokenSettings", "AuthenticationTokenSettings"),
        ("CloudTask", "authenticationTokenSettings", "AuthenticationTokenSettings"),
        ("JobManagerTask", "authenticationTokenSettings", "AuthenticationTokenSettings"),
        ("DataDisk", "storageAccountType", "StorageAccountType"),
    ],
    "enums": [("AccessScope", "job")],
}


# Models the main tables leave out (their filter drops names ending in "Options"; newer/README.md):
# present wherever a property of that type is, with the first version of each property (the
# specs: ExitOptions has jobAction with exit conditions in 2016-07-01.3.1 and dependencyAction
# from 2017-01-01.4.0; OutputFileUploadOptions came with output files).
OPTIONS_MODELS = {
    "ExitOptions": [("jobAction", "JobAction", "2016-07-01.3.1"), ("dependencyAction", "DependencyAction", "2017-01-01.4.0")],
    "OutputFileUploadOptions": [("uploadCondition", "OutputFileUploadCondition", "2017-05-01.5.0")],
}


def fill_options_models(props):
    for model, fields in OPTIONS_MODELS.items():
        used = set()
        for (m, p), members in props.items():
            for i, ty in members.items():
                if ty.strip("[]{}") == model:
                    used.add(i)
        for name, ty, first in fields:
            for i in used:
                if i >= IDX[first]:
                    props.setdefault((model, name), {})[i] = ty


def newer_type(model, prop, ty):
    """The wire type of a newer/ row in the msrest names the rest of the table uses."""
    if ty == "int64-as-string":
        return "long"  # int64 that 15.x declares as a JSON string; the wire takes either
    if model == "PoolSpecification" and prop == "resourceTags" and ty == "str":
        return "{str}"  # 15.x declares it a string by mistake; the wire form is a map (diff.md)
    return ty


def main_rows_at(rows, version, key):
    """Rows of a main table present at `version` (first <= version <= last)."""
    for r in rows:
        if r["first_version"] <= version <= r["last_version"]:
            yield key(r), r


def runs(members):
    """Maximal runs of consecutive version indexes with the same value: [(first, last, value)]."""
    out = []
    for i in sorted(members):
        v = members[i]
        if out and out[-1][1] == i - 1 and out[-1][2] == v:
            out[-1] = (out[-1][0], i, v)
        else:
            out.append((i, i, v))
    return out


def main():
    wire = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "..", "shared", "azure-batch-wire")
    main_props = [r for r in rows(os.path.join(wire, "properties_by_version.tsv")) if not r["model"].endswith("Paged")]
    main_enums = rows(os.path.join(wire, "enums_by_version.tsv"))
    main_ops = rows(os.path.join(wire, "operations_by_version.tsv"))
    newer_props = [r for r in rows(os.path.join(wire, "newer", "properties.tsv"))
                   if not (r["model_old_name"] or r["model_new_name"]).endswith(("Paged", "ListResult"))]
    newer_enums = rows(os.path.join(wire, "newer", "enums.tsv"))
    newer_ops = rows(os.path.join(wire, "newer", "operations.tsv"))

    # key -> {version index: value}; the value is the wire type for properties, True otherwise.
    props, enums, ops = {}, {}, {}

    # The seed's range: the release tables plus the seed's rules.
    for r in main_props:
        first = first_index(r["model"], r["property"], r["first_version"])
        if first is None:
            continue
        for i in range(first, min(last_index(r["last_version"]), SEED_LATEST) + 1):
            props.setdefault((r["model"], r["property"]), {})[i] = r["wire_type"]
    for r in main_enums:
        first = first_index(r["enum"], r["value"], r["first_version"])
        if first is None:
            continue
        for i in range(first, min(last_index(r["last_version"]), SEED_LATEST) + 1):
            enums.setdefault((r["enum"], r["value"]), {})[i] = True
    for r in main_ops:
        first = first_index("op", f'{r["method"]} {r["url"]}', r["first_version"])
        if first is None:
            continue
        for i in range(first, min(last_index(r["last_version"]), SEED_LATEST) + 1):
            ops.setdefault((r["method"], r["url"]), {})[i] = True

    # The versions after the seed, each from its own release.
    for version, source in NEWER.items():
        i = IDX[version]
        if source == "main":
            for k, r in main_rows_at(main_props, version, lambda r: (r["model"], r["property"])):
                props.setdefault(k, {})[i] = r["wire_type"]
            for k, _ in main_rows_at(main_enums, version, lambda r: (r["enum"], r["value"])):
                enums.setdefault(k, {})[i] = True
            for k, _ in main_rows_at(main_ops, version, lambda r: (r["method"], r["url"])):
                ops.setdefault(k, {})[i] = True
            continue
        for r in newer_props:
            if r["api_version"] == version:
                model = r["model_old_name"] or r["model_new_name"]
                ty = newer_type(model, r["property"], r["wire_type_old_names"] or r["wire_type"])
                props.setdefault((model, r["property"]), {})[i] = ty
        for r in newer_enums:
            if r["api_version"] == version:
                enums.setdefault((r["enum_old_name"] or r["enum_new_name"], r["value"]), {})[i] = True
        for r in newer_ops:
            if r["api_version"] == version:
                ops.setdefault((r["method"], r["url"]), {})[i] = True
    i = IDX["2025-06-01"]
    for model, prop, ty in EXTRA_2025["props"]:
        props.setdefault((model, prop), {})[i] = ty
    for name, value in EXTRA_2025["enums"]:
        enums.setdefault((name, value), {})[i] = True
    fill_options_models(props)

    out = []
    out.append("//! @generated by `scripts/gen-version-table.py` from the per-release wire tables and the")
    out.append("//! seed's release notes; do not edit by hand. Version numbers are indexes into")
    out.append(f"//! [`crate::api::version::PUBLISHED`] (0 = {VERSIONS[0]} … {LATEST} = {VERSIONS[LATEST]}).")
    out.append("")
    out.append("use super::{EnumRow, OpRow, PropRow};")
    out.append("")
    out.append("/// Every model property: model, JSON name, wire type, first and last version.")
    out.append("pub const PROPERTIES: &[PropRow] = &[")
    for (model, prop) in sorted(props):
        for first, last, ty in runs(props[(model, prop)]):
            out.append(f'    PropRow {{ model: "{model}", name: "{prop}", ty: "{ty}", first: {first}, last: {last} }},')
    out.append("];")
    out.append("")
    out.append("/// Every enum value: enum, value (spelled as that release spells it), first and last version.")
    out.append("pub const ENUMS: &[EnumRow] = &[")
    for (name, value) in sorted(enums):
        for first, last, _ in runs(enums[(name, value)]):
            out.append(f'    EnumRow {{ name: "{name}", value: "{value}", first: {first}, last: {last} }},')
    out.append("];")
    out.append("")
    out.append("/// Every operation: method, path template, first and last version.")
    out.append("pub const OPERATIONS: &[OpRow] = &[")
    for (method, url) in sorted(ops, key=lambda k: (k[1], k[0])):
        for first, last, _ in runs(ops[(method, url)]):
            out.append(f'    OpRow {{ method: "{method}", path: "{url}", first: {first}, last: {last} }},')
    out.append("];")
    print("\n".join(out))


if __name__ == "__main__":
    main()
