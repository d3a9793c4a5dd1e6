//! Exit conditions of a task (ExitConditions, ExitOptions and their mappings) and the pure
//! decision of what a finished task means for its job and for the tasks that depend on it.
//!
//! Shapes, as Task Add takes them and Task Get echoes them (every property optional):
//!
//! ```text
//! exitConditions: {
//!   exitCodes:      [{code, exitOptions}],            // first match wins
//!   exitCodeRanges: [{start, end, exitOptions}],      // inclusive; after exitCodes
//!   preProcessingError: exitOptions,                  // the task could not start
//!   fileUploadError:    exitOptions,                  // an output file failed to upload
//!   default:            exitOptions                   // anything else that is not exit code 0
//! }
//! exitOptions: {jobAction: none|disable|terminate, dependencyAction: satisfy|block}
//! ```
//!
//! The service echoes exit conditions on Get as they were sent: it fills in nothing (the
//! documented defaults below are decisions, not stored values), and a task added without
//! exit conditions shows none (the recorded Task Get answers carry no `exitConditions`).
//!
//! The rules of [`ExitConditions::options_for`] follow the ExitConditions and ExitOptions
//! descriptions of the Batch REST specification (2022-10-01.16.0):
//! * an exit code is looked up in `exitCodes`, then in `exitCodeRanges`;
//! * a pre-processing error uses `preProcessingError`, a file upload error `fileUploadError`
//!   (but an exit code listed in `exitCodes`/`exitCodeRanges` takes precedence over a file upload
//!   error that follows it);
//! * `default` covers every nonzero exit code not listed, and pre-processing and file upload
//!   errors whose own property is absent; it never covers exit code 0;
//! * what is still unset takes the defaults: `jobAction` none and `dependencyAction` satisfy for
//!   exit code 0, `terminate` and `block` for every other condition.
//!
//! The job action only takes effect when the job's `onTaskFailure` is
//! `performexitoptionsjobaction` ([`ResolvedExitOptions::job_action_under`]); with `noaction`
//! Task Add refuses any job action but `none`.

use super::job::OnTaskFailure;
use crate::batch_enum;
use serde::{Deserialize, Serialize};

batch_enum!(
    /// JobAction: what happens to the job when a task completes with an exit condition —
    /// `none`, `disable` (as Job Disable with `requeue`), or `terminate` (the job's
    /// `terminateReason` becomes `TaskFailed`).
    JobAction { None = "none", Disable = "disable", Terminate = "terminate" }
);

batch_enum!(
    /// DependencyAction: what happens to the tasks that depend on a completed task —
    /// `satisfy` (they may run once their other dependencies are met) or `block` (they wait,
    /// for ever unless the task is reactivated).
    DependencyAction { Satisfy = "satisfy", Block = "block" }
);

/// ExitOptions: how the service responds to one exit condition. A property left out takes
/// the default of the condition it answers (see [`ResolvedExitOptions::defaults`]).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExitOptions {
    /// The action on the job (only when its `onTaskFailure` is `performexitoptionsjobaction`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_action: Option<JobAction>,
    /// The action on the tasks that depend on this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dependency_action: Option<DependencyAction>,
}

/// ExitCodeMapping: the options for one exit code (`code` and `exitOptions` are required).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExitCodeMapping {
    /// The process exit code.
    pub code: i32,
    /// What to do when the task exits with it.
    pub exit_options: ExitOptions,
}

/// ExitCodeRangeMapping: the options for the exit codes `start..=end` (all three required).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExitCodeRangeMapping {
    /// The first exit code of the range.
    pub start: i32,
    /// The last exit code of the range (inclusive).
    pub end: i32,
    /// What to do when the task exits with a code in the range.
    pub exit_options: ExitOptions,
}

impl ExitCodeRangeMapping {
    /// True when `code` lies in `start..=end`.
    pub fn contains(&self, code: i32) -> bool {
        self.start <= code && code <= self.end
    }
}

/// ExitConditions: how the service responds when a task completes (every property optional;
/// stored and echoed as sent). Up to 2017-01-01.4.0 `preProcessingError` was called
/// `schedulingError` and `fileUploadError` did not exist (the version table renames them).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExitConditions {
    /// Options per exit code, searched first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_codes: Option<Vec<ExitCodeMapping>>,
    /// Options per range of exit codes, searched after `exitCodes`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code_ranges: Option<Vec<ExitCodeRangeMapping>>,
    /// Options when the task fails to start (resource files, application packages, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pre_processing_error: Option<ExitOptions>,
    /// Options when an output file fails to upload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_upload_error: Option<ExitOptions>,
    /// Options for every other failure: a nonzero exit code not listed, or an error whose own
    /// property is absent. Never used for exit code 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<ExitOptions>,
}

/// How a task attempt ended, as the exit conditions see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskOutcome {
    /// The process ran and exited with this code.
    ExitCode(i32),
    /// The task failed before its command line ran (a pre-processing error).
    PreProcessingError,
    /// Uploading an output file failed after the process exited with `exit_code` (`None`
    /// when the process never reported one). An exit code listed in `exitCodes` or
    /// `exitCodeRanges` takes precedence over `fileUploadError`, as the specification says.
    FileUploadError {
        /// The process's exit code, if it ran.
        exit_code: Option<i32>,
    },
}

impl TaskOutcome {
    /// True only for a process that exited with code 0 (and no upload error).
    pub fn is_success(self) -> bool {
        self == TaskOutcome::ExitCode(0)
    }
}

/// The options that apply to one outcome, with every default filled in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResolvedExitOptions {
    /// The job action the exit conditions ask for (before `onTaskFailure` is considered).
    pub job_action: JobAction,
    /// What happens to the tasks that depend on this one.
    pub dependency_action: DependencyAction,
}

impl ResolvedExitOptions {
    /// The documented defaults: `none`/`satisfy` for success (exit code 0), `terminate`/`block`
    /// for every other outcome.
    pub fn defaults(outcome: TaskOutcome) -> Self {
        if outcome.is_success() {
            ResolvedExitOptions { job_action: JobAction::None, dependency_action: DependencyAction::Satisfy }
        } else {
            ResolvedExitOptions { job_action: JobAction::Terminate, dependency_action: DependencyAction::Block }
        }
    }

    /// The job action to take for a job whose `onTaskFailure` is `on_task_failure`: the
    /// resolved action with `performexitoptionsjobaction`, `none` with `noaction` (the job
    /// action "applies if the job's onTaskFailure is performExitOptionsJobAction").
    pub fn job_action_under(self, on_task_failure: OnTaskFailure) -> JobAction {
        match on_task_failure {
            OnTaskFailure::PerformExitOptionsJobAction => self.job_action,
            OnTaskFailure::NoAction => JobAction::None,
        }
    }
}

impl ExitOptions {
    /// These options for `outcome`, each absent property taking the outcome's default.
    pub fn resolve(&self, outcome: TaskOutcome) -> ResolvedExitOptions {
        let d = ResolvedExitOptions::defaults(outcome);
        ResolvedExitOptions {
            job_action: self.job_action.unwrap_or(d.job_action),
            dependency_action: self.dependency_action.unwrap_or(d.dependency_action),
        }
    }
}

impl ExitConditions {
    /// The options listed for exit code `code`: the first `exitCodes` entry with that code,
    /// else the first `exitCodeRanges` entry containing it.
    pub fn listed(&self, code: i32) -> Option<&ExitOptions> {
        let exact = self.exit_codes.iter().flatten().find(|m| m.code == code).map(|m| &m.exit_options);
        exact.or_else(|| self.exit_code_ranges.iter().flatten().find(|r| r.contains(code)).map(|r| &r.exit_options))
    }

    /// What `outcome` means for the job and for dependent tasks, following the specification's
    /// order: listed exit codes, then ranges, then the error's own property, then `default`
    /// (never for exit code 0), then the documented defaults.
    pub fn options_for(&self, outcome: TaskOutcome) -> ResolvedExitOptions {
        let chosen = match outcome {
            TaskOutcome::ExitCode(0) => self.listed(0),
            TaskOutcome::ExitCode(code) => self.listed(code).or(self.default.as_ref()),
            TaskOutcome::PreProcessingError => self.pre_processing_error.as_ref().or(self.default.as_ref()),
            TaskOutcome::FileUploadError { exit_code } => {
                exit_code.and_then(|c| self.listed(c)).or(self.file_upload_error.as_ref()).or(self.default.as_ref())
            }
        };
        chosen.map(|o| o.resolve(outcome)).unwrap_or_else(|| ResolvedExitOptions::defaults(outcome))
    }

    /// [`ExitConditions::options_for`] for a task that may have no exit conditions (then
    /// only the defaults apply).
    pub fn resolve(conditions: Option<&ExitConditions>, outcome: TaskOutcome) -> ResolvedExitOptions {
        conditions.map(|c| c.options_for(outcome)).unwrap_or_else(|| ResolvedExitOptions::defaults(outcome))
    }

    /// Every ExitOptions the conditions hold, with its property path below `exitConditions`
    /// (e.g. `exitCodes[0].exitOptions`), in request order.
    pub fn all_options(&self) -> Vec<(String, &ExitOptions)> {
        let mut out = Vec::new();
        for (i, m) in self.exit_codes.iter().flatten().enumerate() {
            out.push((format!("exitCodes[{i}].exitOptions"), &m.exit_options));
        }
        for (i, r) in self.exit_code_ranges.iter().flatten().enumerate() {
            out.push((format!("exitCodeRanges[{i}].exitOptions"), &r.exit_options));
        }
        for (name, o) in
            [("preProcessingError", &self.pre_processing_error), ("fileUploadError", &self.file_upload_error), ("default", &self.default)]
        {
            if let Some(o) = o {
                out.push((name.to_string(), o));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(job: Option<JobAction>, dep: Option<DependencyAction>) -> ExitOptions {
        ExitOptions { job_action: job, dependency_action: dep }
    }

    fn resolved(job: JobAction, dep: DependencyAction) -> ResolvedExitOptions {
        ResolvedExitOptions { job_action: job, dependency_action: dep }
    }

    use DependencyAction::{Block, Satisfy};
    use JobAction::{Disable, None as NoJob, Terminate};

    const SUCCESS: ResolvedExitOptions = ResolvedExitOptions { job_action: JobAction::None, dependency_action: DependencyAction::Satisfy };
    const FAILURE: ResolvedExitOptions =
        ResolvedExitOptions { job_action: JobAction::Terminate, dependency_action: DependencyAction::Block };

    #[test]
    fn without_conditions_the_defaults_apply() {
        let empty = ExitConditions::default();
        assert_eq!(empty.options_for(TaskOutcome::ExitCode(0)), SUCCESS);
        assert_eq!(empty.options_for(TaskOutcome::ExitCode(1)), FAILURE);
        assert_eq!(empty.options_for(TaskOutcome::ExitCode(-1)), FAILURE);
        assert_eq!(empty.options_for(TaskOutcome::PreProcessingError), FAILURE);
        assert_eq!(empty.options_for(TaskOutcome::FileUploadError { exit_code: Some(0) }), FAILURE);
        assert_eq!(ExitConditions::resolve(None, TaskOutcome::ExitCode(0)), SUCCESS);
        assert_eq!(ExitConditions::resolve(None, TaskOutcome::ExitCode(3)), FAILURE);
    }

    #[test]
    fn exit_codes_come_before_ranges_and_the_first_match_wins() {
        let c = ExitConditions {
            exit_codes: Some(vec![
                ExitCodeMapping { code: 3, exit_options: opts(Some(Disable), Some(Satisfy)) },
                ExitCodeMapping { code: 3, exit_options: opts(Some(NoJob), None) },
            ]),
            exit_code_ranges: Some(vec![
                ExitCodeRangeMapping { start: 1, end: 5, exit_options: opts(Some(NoJob), Some(Satisfy)) },
                ExitCodeRangeMapping { start: 4, end: 9, exit_options: opts(Some(Disable), None) },
            ]),
            default: Some(opts(Some(Disable), Some(Satisfy))),
            ..Default::default()
        };
        assert_eq!(c.options_for(TaskOutcome::ExitCode(3)), resolved(Disable, Satisfy));
        assert_eq!(c.options_for(TaskOutcome::ExitCode(1)), resolved(NoJob, Satisfy), "range start is inclusive");
        assert_eq!(c.options_for(TaskOutcome::ExitCode(5)), resolved(NoJob, Satisfy), "range end is inclusive");
        // 6 is only in the second range, which leaves dependencyAction to the default (block).
        assert_eq!(c.options_for(TaskOutcome::ExitCode(6)), resolved(Disable, Block));
        // Not listed: default.
        assert_eq!(c.options_for(TaskOutcome::ExitCode(42)), resolved(Disable, Satisfy));
    }

    #[test]
    fn default_never_covers_exit_code_zero_unless_listed() {
        let c = ExitConditions { default: Some(opts(Some(Disable), Some(Block))), ..Default::default() };
        assert_eq!(c.options_for(TaskOutcome::ExitCode(0)), SUCCESS);
        assert_eq!(c.options_for(TaskOutcome::ExitCode(2)), resolved(Disable, Block));
        // Listing 0 gives it non-default behaviour; what the mapping leaves out keeps the
        // exit-code-0 defaults.
        let c = ExitConditions {
            exit_codes: Some(vec![ExitCodeMapping { code: 0, exit_options: opts(Some(Terminate), None) }]),
            ..Default::default()
        };
        assert_eq!(c.options_for(TaskOutcome::ExitCode(0)), resolved(Terminate, Satisfy));
        let c = ExitConditions {
            exit_code_ranges: Some(vec![ExitCodeRangeMapping { start: -1, end: 1, exit_options: opts(None, Some(Block)) }]),
            ..Default::default()
        };
        assert_eq!(c.options_for(TaskOutcome::ExitCode(0)), resolved(NoJob, Block));
    }

    #[test]
    fn absent_properties_of_a_match_take_the_conditions_defaults() {
        let c = ExitConditions {
            exit_codes: Some(vec![ExitCodeMapping { code: 7, exit_options: ExitOptions::default() }]),
            default: Some(opts(None, Some(Satisfy))),
            ..Default::default()
        };
        assert_eq!(c.options_for(TaskOutcome::ExitCode(7)), FAILURE, "an empty mapping still matches");
        assert_eq!(c.options_for(TaskOutcome::ExitCode(8)), resolved(Terminate, Satisfy));
    }

    #[test]
    fn pre_processing_errors_use_their_property_then_default() {
        let own = ExitConditions {
            pre_processing_error: Some(opts(Some(NoJob), Some(Satisfy))),
            default: Some(opts(Some(Disable), None)),
            ..Default::default()
        };
        assert_eq!(own.options_for(TaskOutcome::PreProcessingError), resolved(NoJob, Satisfy));
        let fallback = ExitConditions { default: Some(opts(Some(Disable), None)), ..Default::default() };
        assert_eq!(fallback.options_for(TaskOutcome::PreProcessingError), resolved(Disable, Block));
        // Exit code lists do not apply to a task that never ran.
        let listed = ExitConditions {
            exit_codes: Some(vec![ExitCodeMapping { code: 0, exit_options: opts(Some(NoJob), Some(Satisfy)) }]),
            ..Default::default()
        };
        assert_eq!(listed.options_for(TaskOutcome::PreProcessingError), FAILURE);
    }

    #[test]
    fn file_upload_errors_yield_to_a_listed_exit_code() {
        let c = ExitConditions {
            exit_codes: Some(vec![ExitCodeMapping { code: 4, exit_options: opts(Some(NoJob), Some(Satisfy)) }]),
            exit_code_ranges: Some(vec![ExitCodeRangeMapping { start: 10, end: 20, exit_options: opts(Some(Disable), None) }]),
            file_upload_error: Some(opts(Some(Terminate), Some(Block))),
            default: Some(opts(Some(Disable), Some(Satisfy))),
            ..Default::default()
        };
        assert_eq!(c.options_for(TaskOutcome::FileUploadError { exit_code: Some(4) }), resolved(NoJob, Satisfy));
        // A range match keeps the failure's defaults for what it leaves out.
        assert_eq!(c.options_for(TaskOutcome::FileUploadError { exit_code: Some(15) }), resolved(Disable, Block));
        assert_eq!(c.options_for(TaskOutcome::FileUploadError { exit_code: Some(0) }), resolved(Terminate, Block));
        assert_eq!(c.options_for(TaskOutcome::FileUploadError { exit_code: None }), resolved(Terminate, Block));
        // Without fileUploadError, default applies; without either, the failure defaults.
        let d = ExitConditions { default: Some(opts(Some(NoJob), None)), ..Default::default() };
        assert_eq!(d.options_for(TaskOutcome::FileUploadError { exit_code: Some(0) }), resolved(NoJob, Block));
        assert_eq!(
            ExitConditions::default().options_for(TaskOutcome::FileUploadError { exit_code: Some(0) }),
            FAILURE,
            "an upload failure after exit code 0 is still a failure"
        );
    }

    #[test]
    fn the_job_action_needs_perform_exit_options_job_action() {
        let r = resolved(Terminate, Block);
        assert_eq!(r.job_action_under(OnTaskFailure::PerformExitOptionsJobAction), Terminate);
        assert_eq!(r.job_action_under(OnTaskFailure::NoAction), NoJob);
        assert_eq!(resolved(Disable, Satisfy).job_action_under(OnTaskFailure::PerformExitOptionsJobAction), Disable);
    }

    #[test]
    fn wire_shape_is_echoed_as_sent() {
        let v = serde_json::json!({
            "exitCodes": [{"code": 1, "exitOptions": {"jobAction": "TERMINATE"}}],
            "exitCodeRanges": [{"start": 2, "end": 4, "exitOptions": {"dependencyAction": "satisfy"}}],
            "default": {}
        });
        let c: ExitConditions = serde_json::from_value(v).unwrap();
        assert_eq!(
            serde_json::to_value(&c).unwrap(),
            serde_json::json!({
                "exitCodes": [{"code": 1, "exitOptions": {"jobAction": "terminate"}}],
                "exitCodeRanges": [{"start": 2, "end": 4, "exitOptions": {"dependencyAction": "satisfy"}}],
                "default": {}
            })
        );
        let paths: Vec<String> = c.all_options().into_iter().map(|(p, _)| p).collect();
        assert_eq!(paths, ["exitCodes[0].exitOptions", "exitCodeRanges[0].exitOptions", "default"]);
        assert!(serde_json::from_value::<ExitConditions>(serde_json::json!({"exitCodes": [{"code": 1}]})).is_err());
    }
}
