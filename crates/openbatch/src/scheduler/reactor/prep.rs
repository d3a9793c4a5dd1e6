//! Job preparation and release tasks.
//!
//! Rules (Azure Batch): a job's preparation task runs on a node before the first of the job's
//! tasks there (retried per its constraints); with `waitForSuccess` the node takes the job's
//! tasks only after it succeeded. When the job ends, its release task runs on every node that
//! ran the preparation task, and the job completes once they all ended.

use super::exec::{exec_spec, outcome, retryable, Runnable};
use super::{to_ts, Backing, Reactor, Records};
use crate::agent::protocol::{ExecKind, ExecResult, ServiceMessage};
use crate::model::common::{ExecutionResult, FailureInfo};
use crate::model::job::{Job, JobNode, JobState, PrepTaskInfo, PrepTaskState};
use crate::model::time::Timestamp;
use crate::scheduler::core::{PrepState, Preparation};
use crate::store::StoreResult;

impl Reactor {
    /// Starts (or, after a failure with retries left, restarts) a job's preparation task on a
    /// node.
    pub(super) async fn start_preparation<B: Backing>(&mut self, r: &mut Records<B>, p: &Preparation, retry_count: i32) -> StoreResult<()> {
        let Some(job) = r.get::<Job>("", &p.job_id).await? else { return Ok(()) };
        let Some(prep) = job.spec.job_preparation_task.clone() else { return Ok(()) };
        let now = self.now();
        let dir = format!("workitems/{}/job-1/jobpreparation", job.spec.id);
        let node_url = format!("{}/pools/{}/nodes/{}", self.info.account_url, p.pool_id, p.node_id);
        let mut row = r.get::<JobNode>(&p.job_id, &p.node_id).await?.unwrap_or(JobNode {
            job_id: p.job_id.clone(),
            pool_id: p.pool_id.clone(),
            node_id: p.node_id.clone(),
            job_preparation_task_execution_info: None,
            job_release_task_execution_info: None,
            prep_dispatch: 0,
            release_dispatch: 0,
        });
        let previous = row.job_preparation_task_execution_info.take();
        let mut info = running_side_task(&dir, &node_url, now);
        info.retry_count = retry_count;
        info.last_retry_time = if retry_count > 0 { Some(now) } else { previous.and_then(|p| p.last_retry_time) };
        row.job_preparation_task_execution_info = Some(info);
        row.prep_dispatch = self.dispatch_id();
        let kind = ExecKind::JobPreparation { job_id: job.spec.id.clone() };
        let spec = exec_spec(kind, row.prep_dispatch, Runnable::from(&prep), Some(&job), None, self.info.auto_storage.as_ref());
        self.send(&p.node_id, ServiceMessage::Run { spec: Box::new(spec) });
        r.put(row);
        Ok(())
    }

    /// A preparation task ended: retried while it has retries left; then the node is ready
    /// for the job's tasks, or (with `waitForSuccess`) closed to them.
    pub(super) async fn preparation_finished<B: Backing>(
        &mut self,
        r: &mut Records<B>,
        pool_id: &str,
        node_id: &str,
        job_id: &str,
        res: ExecResult,
    ) -> StoreResult<()> {
        let Some(mut row) = r.get::<JobNode>(job_id, node_id).await? else { return Ok(()) };
        if row.prep_dispatch != res.dispatch_id {
            return Ok(());
        }
        let Some(job) = r.get::<Job>("", job_id).await? else { return Ok(()) };
        let max_retries =
            job.spec.job_preparation_task.as_ref().and_then(|p| p.constraints.as_ref()).and_then(|c| c.max_task_retry_count).unwrap_or(0);
        let (result, failure) = outcome(&res);
        let retries = row.job_preparation_task_execution_info.as_ref().map(|i| i.retry_count).unwrap_or(0);
        if result == ExecutionResult::Failure && retryable(&res) && (max_retries < 0 || retries < max_retries) {
            let p = Preparation { job_id: job_id.to_string(), pool_id: pool_id.to_string(), node_id: node_id.to_string() };
            return self.start_preparation(r, &p, retries + 1).await;
        }
        let now = self.now();
        if let Some(info) = row.job_preparation_task_execution_info.as_mut() {
            complete_side_task(info, &res, result, failure, now);
        }
        row.prep_dispatch = 0;
        r.put(row);
        self.core.set_prep(job_id, node_id, if result == ExecutionResult::Success { PrepState::Ready } else { PrepState::Failed });
        Ok(())
    }

    /// Starts the job's release task on a node that ran its preparation task; false when
    /// there is none to run there (no release task, or the node is not connected).
    pub(super) async fn start_release<B: Backing>(&mut self, r: &mut Records<B>, job: &Job, node_id: &str) -> StoreResult<bool> {
        let Some(release) = job.spec.job_release_task.clone() else { return Ok(false) };
        let Some(mut row) = r.get::<JobNode>(&job.spec.id, node_id).await? else { return Ok(false) };
        if !self.nodes.get(node_id).is_some_and(|n| n.connected) {
            return Ok(false);
        }
        let now = self.now();
        let dir = format!("workitems/{}/job-1/jobrelease", job.spec.id);
        let node_url = format!("{}/pools/{}/nodes/{}", self.info.account_url, row.pool_id, node_id);
        row.job_release_task_execution_info = Some(running_side_task(&dir, &node_url, now));
        row.release_dispatch = self.dispatch_id();
        let kind = ExecKind::JobRelease { job_id: job.spec.id.clone() };
        let spec = exec_spec(kind, row.release_dispatch, Runnable::from(&release), Some(job), None, self.info.auto_storage.as_ref());
        self.send(node_id, ServiceMessage::Run { spec: Box::new(spec) });
        r.put(row);
        Ok(true)
    }

    /// A release task ended; a terminating job completes once its last one has.
    pub(super) async fn release_finished<B: Backing>(
        &mut self,
        r: &mut Records<B>,
        node_id: &str,
        job_id: &str,
        res: ExecResult,
    ) -> StoreResult<()> {
        let Some(mut row) = r.get::<JobNode>(job_id, node_id).await? else { return Ok(()) };
        if row.release_dispatch != res.dispatch_id {
            return Ok(());
        }
        let (result, failure) = outcome(&res);
        let now = self.now();
        if let Some(info) = row.job_release_task_execution_info.as_mut() {
            complete_side_task(info, &res, result, failure, now);
        }
        row.release_dispatch = 0;
        r.put(row);
        self.complete_job_if_released(r, job_id).await
    }

    /// Once none of a job's release tasks still runs, a terminating job completes and a
    /// deleting one goes.
    pub(super) async fn complete_job_if_released<B: Backing>(&mut self, r: &mut Records<B>, job_id: &str) -> StoreResult<()> {
        let Some(mut job) = r.get::<Job>("", job_id).await? else { return Ok(()) };
        if !matches!(job.status.state, JobState::Terminating | JobState::Deleting) {
            return Ok(());
        }
        let rows = r.children::<JobNode>(job_id).await?;
        if rows.iter().any(|jn| jn.job_release_task_execution_info.as_ref().is_some_and(|i| i.state == PrepTaskState::Running)) {
            return Ok(());
        }
        if job.status.state == JobState::Deleting {
            return self.purge_job(r, job_id).await;
        }
        self.complete_job(r, &mut job).await?;
        r.put(job);
        Ok(())
    }

    /// A node leaves: its preparation rows go, and release tasks it was running count as
    /// ended (so their jobs can complete).
    pub(super) async fn abandon_side_tasks<B: Backing>(&mut self, r: &mut Records<B>, node_id: &str) -> StoreResult<()> {
        let mut jobs = Vec::new();
        for jn in r.by_id::<JobNode>(node_id).await? {
            if jn.job_release_task_execution_info.as_ref().is_some_and(|i| i.state == PrepTaskState::Running) {
                jobs.push(jn.job_id.clone());
            }
            r.remove::<JobNode>(&jn.job_id, node_id);
        }
        for job_id in jobs {
            self.complete_job_if_released(r, &job_id).await?;
        }
        Ok(())
    }
}

/// A preparation or release task that starts now in `dir` on the node at `node_url`.
fn running_side_task(dir: &str, node_url: &str, now: Timestamp) -> PrepTaskInfo {
    PrepTaskInfo {
        start_time: now,
        end_time: None,
        state: PrepTaskState::Running,
        task_root_directory: dir.to_string(),
        task_root_directory_url: format!("{node_url}/files/{dir}"),
        exit_code: None,
        failure_info: None,
        retry_count: 0,
        last_retry_time: None,
        result: None,
    }
}

/// Records how a preparation or release task ended.
fn complete_side_task(info: &mut PrepTaskInfo, r: &ExecResult, result: ExecutionResult, failure: Option<FailureInfo>, now: Timestamp) {
    info.state = PrepTaskState::Completed;
    if let Some(s) = r.started_ms {
        info.start_time = to_ts(s, now);
    }
    info.end_time = Some(to_ts(r.ended_ms, now).max(info.start_time));
    info.exit_code = r.exit_code;
    info.result = Some(result);
    info.failure_info = failure;
}
