#!/usr/bin/env node
// End-to-end scenario through the official Azure Batch SDK for JavaScript
// (@azure/batch 10.2.0, api-version 2022-10-01.16.0), unmodified.
//
//   OPENBATCH_URL=http://127.0.0.1:10400 OPENBATCH_ACCOUNT=... OPENBATCH_KEY=... \
//     NODE_PATH=target/node/node_modules node conformance/js/batch_scenario.js
//
// conformance/test_js_sdk.py runs it against a fresh `openbatch serve`
// (scripts/test-all.sh installs the SDK into target/node/ from
// conformance/js/package-lock.json). Exits 0 when every check passed and
// non-zero, with the failing request and answer, otherwise.
"use strict";

const assert = require("node:assert/strict");
const crypto = require("node:crypto");
const { BatchServiceClient, BatchSharedKeyCredentials } = require("@azure/batch");

const URL_ = required("OPENBATCH_URL");
const ACCOUNT = required("OPENBATCH_ACCOUNT");
const KEY = required("OPENBATCH_KEY");
const TIMEOUT_MS = 60000;

function required(name) {
  const v = process.env[name];
  if (!v) {
    console.error(`error: ${name} is not set`);
    process.exit(2);
  }
  return v;
}

function unique(prefix) {
  return `${prefix}-${crypto.randomBytes(4).toString("hex")}`;
}

function step(what) {
  console.log(`[js] ${what}`);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function waitUntil(what, probe, timeoutMs = TIMEOUT_MS, intervalMs = 300) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    const [done, seen] = await probe();
    last = seen;
    if (done) return seen;
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs / 1000}s waiting for ${what}; last seen: ${JSON.stringify(last)}`);
    }
    await sleep(intervalMs);
  }
}

// Every page of a list operation (the SDK returns one page plus odatanextLink).
async function listAll(firstPage, next) {
  const items = [...firstPage];
  let link = firstPage.odatanextLink;
  while (link) {
    const page = await next(link);
    items.push(...page);
    link = page.odatanextLink;
  }
  return items;
}

async function readStream(stream) {
  const chunks = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk));
  return Buffer.concat(chunks).toString("utf8");
}

async function main() {
  const client = new BatchServiceClient(new BatchSharedKeyCredentials(ACCOUNT, KEY), URL_, {
    noRetryPolicy: true, // fail fast and visibly: no silent retries of 5xx answers
  });
  assert.equal(client.apiVersion, "2022-10-01.16.0");
  const poolId = unique("js-pool");
  const jobId = unique("js-job");

  // -- supported images -> pool of 2 nodes -------------------------------
  step("account.listSupportedImages");
  const images = await listAll(await client.account.listSupportedImages(), (l) =>
    client.account.listSupportedImagesNext(l));
  const linux = images.filter((i) => i.osType === "linux" && /ubuntu/i.test(i.nodeAgentSKUId));
  assert.ok(linux.length > 0, `no Linux ubuntu image among ${JSON.stringify(images)}`);
  linux.sort((a, b) => (a.nodeAgentSKUId === "batch.node.ubuntu 22.04" ? -1 : 0) - (b.nodeAgentSKUId === "batch.node.ubuntu 22.04" ? -1 : 0));
  const image = linux[0];
  assert.ok(image.imageReference.publisher && image.imageReference.offer && image.imageReference.sku, JSON.stringify(image));

  step(`pool.add ${poolId} (${image.nodeAgentSKUId})`);
  const added = await client.pool.add({
    id: poolId,
    vmSize: "standard_d2_v3",
    targetDedicatedNodes: 2,
    virtualMachineConfiguration: {
      imageReference: image.imageReference,
      nodeAgentSKUId: image.nodeAgentSKUId,
    },
  });
  assert.equal(added._response.status, 201);
  assert.ok(await client.pool.exists(poolId).then((r) => r.body), "pool.exists returned false after add");

  step("computeNode.list until 2 idle nodes");
  await waitUntil(`2 idle nodes in ${poolId}`, async () => {
    const nodes = await listAll(await client.computeNode.list(poolId), (l) => client.computeNode.listNext(l));
    const states = nodes.map((n) => n.state);
    return [nodes.length === 2 && states.every((s) => s === "idle"), states];
  });
  const pool = await client.pool.get(poolId);
  assert.equal(pool.currentDedicatedNodes, 2, JSON.stringify(pool));
  assert.equal(pool.allocationState, "steady", JSON.stringify(pool));

  // -- job and tasks -----------------------------------------------------
  step(`job.add ${jobId}`);
  await client.job.add({ id: jobId, poolInfo: { poolId } });
  const job = await client.job.get(jobId);
  assert.equal(job.state, "active");

  step("task.add (single) and task.addCollection (5) and a task exiting 3");
  await client.task.add(jobId, { id: "hello", commandLine: '/bin/sh -c "echo hello from $AZ_BATCH_TASK_ID"' });
  const collection = [];
  for (let i = 0; i < 5; i++) {
    collection.push({ id: `echo-${i}`, commandLine: `/bin/sh -c "echo line-${i}; echo err-${i} >&2"` });
  }
  const result = await client.task.addCollection(jobId, collection);
  const statuses = Object.fromEntries(result.value.map((r) => [r.taskId, r.status]));
  assert.deepEqual(
    Object.keys(statuses).sort(),
    collection.map((t) => t.id).sort(),
    `addCollection results: ${JSON.stringify(result.value)}`,
  );
  // The real service spells these "Success" / "ClientError" (the SDK passes them through as sent).
  for (const [id, status] of Object.entries(statuses)) assert.equal(String(status).toLowerCase(), "success", `task ${id}: ${status}`);
  await client.task.add(jobId, { id: "fails", commandLine: '/bin/sh -c "echo failing; exit 3"' });

  step("task.list until all 7 tasks completed");
  const tasks = await waitUntil("7 completed tasks", async () => {
    const list = await listAll(await client.task.list(jobId), (l) => client.task.listNext(l));
    const done = list.filter((t) => t.state === "completed");
    return [list.length === 7 && done.length === 7, list.length === 7 && done.length === 7 ? list : list.map((t) => [t.id, t.state])];
  });

  // -- exit codes, results, stdout ---------------------------------------
  step("task.get exit codes");
  for (const t of tasks) {
    const got = await client.task.get(jobId, t.id);
    const want = t.id === "fails" ? 3 : 0;
    assert.equal(got.executionInfo.exitCode, want, `${t.id}: ${JSON.stringify(got.executionInfo)}`);
    assert.equal(got.executionInfo.result, want === 0 ? "success" : "failure", `${t.id}: ${JSON.stringify(got.executionInfo)}`);
    if (want !== 0) {
      // "UserError" as the real service spells it (the spec's enum says usererror).
      assert.equal(String(got.executionInfo.failureInfo.category).toLowerCase(), "usererror", JSON.stringify(got.executionInfo));
      assert.equal(got.executionInfo.failureInfo.code, "FailureExitCode", JSON.stringify(got.executionInfo));
    }
  }

  step("file.getFromTask stdout.txt / stderr.txt");
  const hello = await readStream((await client.file.getFromTask(jobId, "hello", "stdout.txt")).readableStreamBody);
  assert.equal(hello, "hello from hello\n");
  for (let i = 0; i < 5; i++) {
    const out = await readStream((await client.file.getFromTask(jobId, `echo-${i}`, "stdout.txt")).readableStreamBody);
    assert.equal(out, `line-${i}\n`, `stdout.txt of echo-${i}`);
    const err = await readStream((await client.file.getFromTask(jobId, `echo-${i}`, "stderr.txt")).readableStreamBody);
    assert.equal(err, `err-${i}\n`, `stderr.txt of echo-${i}`);
  }
  const failing = await readStream((await client.file.getFromTask(jobId, "fails", "stdout.txt")).readableStreamBody);
  assert.equal(failing, "failing\n");
  const props = await client.file.getPropertiesFromTask(jobId, "hello", "stdout.txt");
  assert.equal(Number(props.contentLength), "hello from hello\n".length, JSON.stringify(props));

  step("file.listFromTask");
  const files = await listAll(await client.file.listFromTask(jobId, "hello"), (l) => client.file.listFromTaskNext(l));
  const names = files.map((f) => f.name);
  for (const want of ["stdout.txt", "stderr.txt", "wd"]) {
    assert.ok(names.includes(want), `listFromTask(hello) lacks ${want}: ${JSON.stringify(names)}`);
  }
  const stdoutEntry = files.find((f) => f.name === "stdout.txt");
  assert.equal(stdoutEntry.isDirectory, false);
  assert.equal(Number(stdoutEntry.properties.contentLength), "hello from hello\n".length);

  step("job.getTaskCounts");
  const counts = await client.job.getTaskCounts(jobId);
  assert.deepEqual(
    { ...counts.taskCounts },
    { active: 0, running: 0, completed: 7, succeeded: 6, failed: 1 },
    JSON.stringify(counts),
  );
  assert.equal(counts.taskSlotCounts.completed, 7, JSON.stringify(counts));

  step("task.list with $filter");
  const failed = await listAll(
    await client.task.list(jobId, { taskListOptions: { filter: "executionInfo/result eq 'failure'" } }),
    (l) => client.task.listNext(l),
  );
  assert.deepEqual(failed.map((t) => t.id), ["fails"]);
  const echoes = await listAll(
    await client.task.list(jobId, { taskListOptions: { filter: "startswith(id, 'echo-') and state eq 'completed'", select: "id,state" } }),
    (l) => client.task.listNext(l),
  );
  assert.deepEqual(echoes.map((t) => t.id).sort(), collection.map((t) => t.id).sort());
  const pools = await listAll(
    await client.pool.list({ poolListOptions: { filter: `id eq '${poolId}'` } }),
    (l) => client.pool.listNext(l),
  );
  assert.deepEqual(pools.map((p) => p.id), [poolId]);

  step("404 for a missing task");
  await assert.rejects(client.task.get(jobId, "no-such-task"), (e) => e.statusCode === 404 && e.code === "TaskNotFound");

  // -- a job schedule on the pool -----------------------------------------
  step("jobSchedule.add, get, job.listFromJobSchedule, disable/enable, terminate, deleteMethod");
  const scheduleId = `${jobId}-sched`;
  const job1 = `${scheduleId}:job-1`;
  await client.jobSchedule.add({
    id: scheduleId,
    schedule: { recurrenceInterval: "PT1H" },
    jobSpecification: { poolInfo: { poolId }, jobManagerTask: { id: "jm", commandLine: '/bin/sh -c "echo scheduled $AZ_BATCH_JOB_ID"' } },
  });
  const sched = await client.jobSchedule.get(scheduleId);
  assert.equal(sched.state, "active");
  assert.equal(sched.executionInfo.recentJob.id, job1);
  await waitUntil(`${job1} completed`, async () => {
    const j = await client.job.get(job1);
    return [j.state === "completed", j.state];
  });
  const scheduled = await readStream((await client.file.getFromTask(job1, "jm", "stdout.txt")).readableStreamBody);
  assert.equal(scheduled.trim(), `scheduled ${job1}`);
  const jobsOfSchedule = await listAll(await client.job.listFromJobSchedule(scheduleId), (l) => client.job.listFromJobScheduleNext(l));
  assert.deepEqual(jobsOfSchedule.map((j) => j.id), [job1]);
  await client.jobSchedule.disable(scheduleId);
  assert.equal((await client.jobSchedule.get(scheduleId)).state, "disabled");
  await client.jobSchedule.enable(scheduleId);
  await client.jobSchedule.terminate(scheduleId);
  await waitUntil(`job schedule ${scheduleId} completed`, async () => {
    const s = await client.jobSchedule.get(scheduleId);
    return [s.state === "completed", s.state];
  });
  await client.jobSchedule.deleteMethod(scheduleId);
  await waitUntil(`job schedule ${scheduleId} gone`, async () => {
    const exists = (await client.jobSchedule.exists(scheduleId)).body;
    return [!exists, exists];
  });

  // -- resize, delete ----------------------------------------------------
  step("pool.resize to 1");
  await client.pool.resize(poolId, { targetDedicatedNodes: 1 });
  await waitUntil("pool resized to 1 node", async () => {
    const p = await client.pool.get(poolId);
    const nodes = await listAll(await client.computeNode.list(poolId), (l) => client.computeNode.listNext(l));
    return [p.allocationState === "steady" && p.currentDedicatedNodes === 1 && nodes.length === 1,
      { allocationState: p.allocationState, currentDedicatedNodes: p.currentDedicatedNodes, nodes: nodes.length }];
  });

  step("job.deleteMethod, pool.deleteMethod");
  await client.job.deleteMethod(jobId);
  await waitUntil(`job ${jobId} gone`, async () => {
    try {
      const j = await client.job.get(jobId);
      return [false, j.state];
    } catch (e) {
      if (e.statusCode === 404) return [true, 404];
      throw e;
    }
  });
  await client.pool.deleteMethod(poolId);
  await waitUntil(`pool ${poolId} gone`, async () => {
    const exists = (await client.pool.exists(poolId)).body;
    return [!exists, exists];
  });
  step("all checks passed");
}

function describe(e) {
  const lines = [String(e && e.stack ? e.stack : e)];
  if (e && e.request) {
    lines.push(`request:  ${e.request.method} ${e.request.url}`);
    if (e.request.body) lines.push(`request body: ${String(e.request.body).slice(0, 2000)}`);
  }
  if (e && e.response) {
    lines.push(`response: ${e.response.status}`);
    const headers = e.response.headers && e.response.headers.rawHeaders ? e.response.headers.rawHeaders() : {};
    for (const [k, v] of Object.entries(headers)) lines.push(`  ${k}: ${v}`);
    lines.push(`response body: ${String(e.response.bodyAsText || "").slice(0, 4000)}`);
  }
  return lines.join("\n");
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(`[js] FAILED\n${describe(e)}`);
    process.exit(1);
  },
);
