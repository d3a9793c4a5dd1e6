//! What an agent runs, built in one place, and how an execution's result reads in Batch terms.

use crate::agent::protocol::{AppPackageRef, ExecFailure, ExecKind, ExecResult, ExecSpec, FailureKind};
use crate::model::common::{EnvironmentSetting, ErrorCategory, ExecutionResult, FailureInfo, NameValuePair, StartTask, UserIdentity};
use crate::model::job::{Job, JobPreparationTask, JobReleaseTask};
use crate::model::task::TaskSpec;
use crate::model::time::parse_duration;
use crate::storage::resource_files::AutoStorage;
use crate::storage::{output_files, resource_files};
use serde_json::Value;

/// The parts of a start task, job preparation/release task or task that decide how it runs.
#[derive(Debug, Clone, Copy, Default)]
pub struct Runnable<'a> {
    pub command_line: &'a str,
    pub environment: Option<&'a [EnvironmentSetting]>,
    pub resource_files: Option<&'a [Value]>,
    pub output_files: Option<&'a [Value]>,
    pub user_identity: Option<&'a UserIdentity>,
    /// ISO 8601 `maxWallClockTime`, if limited.
    pub max_wall_clock: Option<&'a str>,
    pub app_packages: Option<&'a [Value]>,
}

impl<'a> From<&'a TaskSpec> for Runnable<'a> {
    fn from(t: &'a TaskSpec) -> Self {
        Runnable {
            command_line: &t.command_line,
            environment: t.environment_settings.as_deref(),
            resource_files: t.resource_files.as_deref(),
            output_files: t.output_files.as_deref(),
            user_identity: t.user_identity.as_ref(),
            max_wall_clock: t.constraints.as_ref().and_then(|c| c.max_wall_clock_time.as_deref()),
            app_packages: t.application_package_references.as_deref(),
        }
    }
}

impl<'a> From<&'a StartTask> for Runnable<'a> {
    fn from(t: &'a StartTask) -> Self {
        Runnable {
            command_line: &t.command_line,
            environment: t.environment_settings.as_deref(),
            resource_files: t.resource_files.as_deref(),
            user_identity: t.user_identity.as_ref(),
            ..Default::default()
        }
    }
}

impl<'a> From<&'a JobPreparationTask> for Runnable<'a> {
    fn from(t: &'a JobPreparationTask) -> Self {
        Runnable {
            command_line: &t.command_line,
            environment: t.environment_settings.as_deref(),
            resource_files: t.resource_files.as_deref(),
            user_identity: t.user_identity.as_ref(),
            max_wall_clock: t.constraints.as_ref().and_then(|c| c.max_wall_clock_time.as_deref()),
            ..Default::default()
        }
    }
}

impl<'a> From<&'a JobReleaseTask> for Runnable<'a> {
    fn from(t: &'a JobReleaseTask) -> Self {
        Runnable {
            command_line: &t.command_line,
            environment: t.environment_settings.as_deref(),
            resource_files: t.resource_files.as_deref(),
            user_identity: t.user_identity.as_ref(),
            max_wall_clock: t.max_wall_clock_time.as_deref(),
            ..Default::default()
        }
    }
}

/// Builds the [`ExecSpec`] of any execution: the job's common environment settings come
/// first and the execution's own win; the pool's application packages, then the execution's.
pub fn exec_spec(
    kind: ExecKind,
    dispatch_id: u64,
    run: Runnable<'_>,
    job: Option<&Job>,
    pool_packages: Option<&[Value]>,
    auto_storage: Option<&AutoStorage>,
) -> ExecSpec {
    let common = job.and_then(|j| j.spec.common_environment_settings.as_deref());
    let environment = common
        .into_iter()
        .flatten()
        .chain(run.environment.into_iter().flatten())
        .map(|e| (e.name.clone(), e.value.clone().unwrap_or_default()))
        .collect();
    ExecSpec {
        job_prep: job.is_some_and(|j| j.spec.job_preparation_task.is_some()),
        job_id: job.map(|j| j.spec.id.clone()),
        kind,
        dispatch_id,
        command_line: run.command_line.to_string(),
        environment,
        max_wall_clock_secs: run.max_wall_clock.and_then(parse_duration).and_then(|d| d.0).map(|d| d.as_secs_f64()),
        admin: run.user_identity.is_some_and(|u| u.is_admin()),
        resource_files: resource_files::specs(run.resource_files, auto_storage),
        output_files: output_files::specs(run.output_files),
        app_packages: [pool_packages, run.app_packages].into_iter().flat_map(AppPackageRef::from_api).collect(),
        multi_instance: None,
    }
}

/// How an execution ended, in the terms exit conditions use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// The process ran and exited with this code.
    ExitCode(i32),
    /// The task could not start: resource files, application packages, its directory, or
    /// launching the program failed (exit conditions' `preProcessingError`).
    PreProcessingError,
    /// The process ended (with this exit code, when it ran) but its output files could not be
    /// uploaded (`fileUploadError`).
    FileUploadError(Option<i32>),
    /// The wall-clock limit ended it.
    TimedOut,
    /// The service ended it (Terminate, node removal).
    Killed,
}

/// Classifies an execution result by its typed failure kind, never by message text.
pub fn ending(r: &ExecResult) -> Ending {
    match &r.failure {
        None => Ending::ExitCode(r.exit_code.unwrap_or(-1)),
        Some(f) => match f.kind {
            FailureKind::PreProcessing => Ending::PreProcessingError,
            FailureKind::FileUpload => Ending::FileUploadError(r.exit_code),
            FailureKind::WallClockTimeout => Ending::TimedOut,
            FailureKind::Killed => Ending::Killed,
            FailureKind::Other => Ending::ExitCode(r.exit_code.unwrap_or(-1)),
        },
    }
}

/// Failures a retry may cure: a nonzero exit code, a file upload error or the wall-clock
/// limit. Launch failures (program not found) and service terminations are final.
pub fn retryable(r: &ExecResult) -> bool {
    match ending(r) {
        Ending::ExitCode(c) => c != 0,
        Ending::TimedOut | Ending::FileUploadError(_) => true,
        Ending::PreProcessingError | Ending::Killed => false,
    }
}

fn failure_info(f: &ExecFailure) -> FailureInfo {
    let details = if f.details.is_empty() {
        vec![NameValuePair { name: "Message".into(), value: f.detail.clone() }]
    } else {
        f.details.iter().map(|(name, value)| NameValuePair { name: name.clone(), value: value.clone() }).collect()
    };
    FailureInfo { category: ErrorCategory::UserError, code: Some(f.code.clone()), message: Some(f.message.clone()), details: Some(details) }
}

/// The Batch result and failure information of an execution.
pub fn outcome(r: &ExecResult) -> (ExecutionResult, Option<FailureInfo>) {
    if let Some(f) = &r.failure {
        return (ExecutionResult::Failure, Some(failure_info(f)));
    }
    match r.exit_code {
        Some(0) => (ExecutionResult::Success, None),
        _ => (
            ExecutionResult::Failure,
            Some(FailureInfo {
                category: ErrorCategory::UserError,
                code: Some("FailureExitCode".into()),
                message: Some("The task exited with an exit code representing a failure".into()),
                details: Some(vec![
                    NameValuePair { name: "Message".into(), value: "The task process exited with an unexpected exit code".into() },
                    NameValuePair { name: "AdditionalErrorCode".into(), value: "FailureExitCode".into() },
                ]),
            }),
        ),
    }
}

/// A user error recorded when the service ends work (`TaskEnded` and its message).
pub fn ended_by_service(code: &str, message: &str) -> FailureInfo {
    FailureInfo { category: ErrorCategory::UserError, code: Some(code.to_string()), message: Some(message.to_string()), details: None }
}
