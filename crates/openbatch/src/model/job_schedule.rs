//! Job schedule: the canonical resource, the parameters of JobSchedule Add, Update (PUT) and
//! Patch, and the recurrence rule that decides when a schedule creates its next job.
//!
//! The rule ([`Schedule::step`]) follows the `Schedule` model of the Batch API
//! (`BatchService.json`, 2022-10-01.16.0):
//! * the first job is due at `doNotRunUntil`, or at once when it is not set;
//! * a recurring schedule's jobs are due every `recurrenceInterval` after that (at least one
//!   minute); without one, the schedule runs once and completes when that job finishes;
//! * a schedule has at most one active job: a job due while the previous one is active is
//!   created when that one completes, if the recurrence's window is still open;
//! * a recurrence's window is its `startWindow` (at least one minute; infinite by default),
//!   and never reaches into the next recurrence ("the job that is due in one
//!   recurrenceInterval is not carried forward into the next"); a job not created in its
//!   window is not created for that recurrence;
//! * no job is created after `doNotRunAfter`; the schedule completes once that time passed and
//!   no job of it is active.

use super::common::MetadataItem;
use super::job::JobSpec;
use super::time::{parse_duration, ts, ts_opt, Timestamp};
use crate::batch_enum;
use serde::{Deserialize, Serialize};

batch_enum!(
    /// JobScheduleState.
    JobScheduleState {
        Active = "active",
        Completed = "completed",
        Disabled = "disabled",
        Terminating = "terminating",
        Deleting = "deleting",
    }
);

/// Schedule: when the schedule's jobs are created. Durations are ISO 8601 (canonical form),
/// times UTC.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Schedule {
    /// No job is created before this time (default: at once).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "ts_opt")]
    pub do_not_run_until: Option<Timestamp>,
    /// No job is created after this time.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "ts_opt")]
    pub do_not_run_after: Option<Timestamp>,
    /// How long after its due time a job may still be created (default: no limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_window: Option<String>,
    /// The time between the due times of two successive jobs (default: the schedule runs once).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recurrence_interval: Option<String>,
}

/// What a schedule does now, as [`Schedule::step`] decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Create the job of the recurrence due at `due`; the next recurrence is due at `next`
    /// (`None`: this was the last).
    CreateJob { due: Timestamp, next: Option<Timestamp> },
    /// Nothing to do until `wake` (or, when `None`, until the active job completes or the
    /// schedule changes); `next` is the pending recurrence's due time.
    Wait { next: Option<Timestamp>, wake: Option<Timestamp> },
    /// No job will be created any more and none is active: the schedule completes.
    Complete,
}

/// The shortest `startWindow` and `recurrenceInterval` the service accepts.
pub const MIN_INTERVAL_SECS: u64 = 60;

fn chrono_of(iso: Option<&str>) -> Option<chrono::Duration> {
    let d = parse_duration(iso?)?.0?;
    chrono::Duration::from_std(d).ok()
}

impl Schedule {
    /// The time between recurrences, when the schedule recurs.
    pub fn interval(&self) -> Option<chrono::Duration> {
        chrono_of(self.recurrence_interval.as_deref()).filter(|d| *d > chrono::Duration::zero())
    }

    /// The start window, when limited.
    pub fn window(&self) -> Option<chrono::Duration> {
        chrono_of(self.start_window.as_deref())
    }

    /// When the first job is due for a schedule created (or re-timed) at `now`.
    pub fn first_due(&self, now: Timestamp) -> Timestamp {
        self.do_not_run_until.map_or(now, |t| t.max(now))
    }

    /// Where a recurrence's window closes: its start window, and never later than the next
    /// recurrence's due time. `None`: open until the job is created.
    fn window_end(&self, due: Timestamp) -> Option<Timestamp> {
        let by_window = self.window().and_then(|w| due.checked_add_signed(w));
        let by_next = self.interval().and_then(|i| due.checked_add_signed(i));
        match (by_window, by_next) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The recurrence after `due` whose window may still be open at `now` (for a window that
    /// closed): the latest one due at or before `now`, and at least the one right after `due`.
    fn catch_up(&self, due: Timestamp, now: Timestamp) -> Option<Timestamp> {
        let i = self.interval()?;
        let elapsed = (now - due).num_milliseconds().max(0);
        let steps = (elapsed / i.num_milliseconds().max(1)).max(1);
        // One multiplication, so that a clock moved on by a year costs nothing.
        due.checked_add_signed(i * i32::try_from(steps).unwrap_or(i32::MAX))
    }

    /// Decides what a schedule does at `now`, given the due time of its pending recurrence
    /// (`next`), whether one of its jobs is active, and whether it is enabled (a disabled
    /// schedule creates no job, but its windows pass as usual).
    pub fn step(&self, mut next: Option<Timestamp>, now: Timestamp, job_active: bool, enabled: bool) -> Step {
        let after = self.do_not_run_after;
        loop {
            let Some(due) = next else {
                return match after {
                    _ if job_active => Step::Wait { next: None, wake: None },
                    Some(a) if now < a => Step::Wait { next: None, wake: Some(a) },
                    _ => Step::Complete,
                };
            };
            if after.is_some_and(|a| due > a) {
                next = None;
                continue;
            }
            if now < due {
                return Step::Wait { next, wake: Some(due) };
            }
            let end = self.window_end(due);
            if end.is_some_and(|e| now >= e) {
                // The opportunity is lost; the next recurrence may be open.
                next = self.catch_up(due, now);
                continue;
            }
            if after.is_some_and(|a| now > a) {
                next = None;
                continue;
            }
            if job_active || !enabled {
                return Step::Wait { next, wake: end };
            }
            let following = self.interval().and_then(|i| due.checked_add_signed(i));
            return Step::CreateJob { due, next: following };
        }
    }
}

/// RecentJob: the schedule's most recent job (its URL is rendered from the id).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RecentJob {
    pub id: String,
}

/// JobScheduleExecutionInformation (without `recentJob.url`, which the renderer adds).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct JobScheduleExecutionInfo {
    /// When the next job is due (absent when none will be created).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "ts_opt")]
    pub next_run_time: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recent_job: Option<RecentJob>,
    /// When the schedule completed.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "ts_opt")]
    pub end_time: Option<Timestamp>,
}

/// The properties a caller sets on a job schedule (JobScheduleAddParameter), normalized.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct JobScheduleSpec {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    pub schedule: Schedule,
    /// The jobs' specification (JobSpecification): a job's properties without its id (`id`
    /// is empty here and never rendered).
    pub job_specification: JobSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Vec<MetadataItem>>,
}

/// A job schedule: what the caller set, and what the service keeps.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobSchedule {
    pub spec: JobScheduleSpec,
    pub state: JobScheduleState,
    #[serde(with = "ts")]
    pub state_transition_time: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_state: Option<JobScheduleState>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "ts_opt")]
    pub previous_state_transition_time: Option<Timestamp>,
    pub execution_info: JobScheduleExecutionInfo,
    #[serde(with = "ts")]
    pub creation_time: Timestamp,
    #[serde(with = "ts")]
    pub last_modified: Timestamp,
    /// How many jobs the schedule created (the next is `<id>:job-<jobs_created + 1>`).
    #[serde(default)]
    pub jobs_created: u64,
    /// Whether the most recent job is still active (not completed, not deleted).
    #[serde(default)]
    pub job_active: bool,
    /// The auto pool of a `poolLifetimeOption: jobschedule` specification, once created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_pool_id: Option<String>,
    /// The statistics of the schedule's jobs (JobScheduleStatistics, shown with
    /// `$expand=stats`), summed over their tasks' attempts; absent until one ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stats: Option<super::stats::JobStats>,
    /// The due time of the recurrence the most recent job was created for.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "ts_opt")]
    pub last_run_due: Option<Timestamp>,
}

impl JobSchedule {
    /// A new, active schedule whose first job is due as its schedule says.
    pub fn new(spec: JobScheduleSpec, now: Timestamp) -> Self {
        let first = spec.schedule.first_due(now);
        JobSchedule {
            spec,
            state: JobScheduleState::Active,
            state_transition_time: now,
            previous_state: None,
            previous_state_transition_time: None,
            execution_info: JobScheduleExecutionInfo { next_run_time: Some(first), recent_job: None, end_time: None },
            creation_time: now,
            last_modified: now,
            jobs_created: 0,
            job_active: false,
            auto_pool_id: None,
            stats: None,
            last_run_due: None,
        }
    }

    /// Recomputes the next run time after the caller changed the schedule (Update, Patch):
    /// the first job is due as the new schedule says; after one ran, the next is due one new
    /// `recurrenceInterval` after it (not before `doNotRunUntil`), and a schedule that no
    /// longer recurs creates no more jobs.
    pub fn retime(&mut self, now: Timestamp) {
        let s = &self.spec.schedule;
        self.execution_info.next_run_time = match (self.last_run_due, s.interval()) {
            (None, _) => Some(s.first_due(now)),
            (Some(last), Some(i)) => last.checked_add_signed(i).map(|t| s.do_not_run_until.map_or(t, |u| t.max(u))),
            (Some(_), None) => None,
        };
    }

    /// Moves to `state` at `now`, keeping the previous state as Batch reports it.
    pub fn transition(&mut self, state: JobScheduleState, now: Timestamp) {
        super::common::transition(
            &mut self.state,
            &mut self.state_transition_time,
            &mut self.previous_state,
            &mut self.previous_state_transition_time,
            state,
            now,
        );
    }

    /// The id of the schedule's `n`-th job: `<scheduleId>:job-<n>`.
    pub fn job_id(&self, n: u64) -> String {
        format!("{}:job-{n}", self.spec.id)
    }

    /// The prefix every job id of the schedule starts with.
    pub fn job_prefix(id: &str) -> String {
        format!("{id}:job-")
    }
}

/// The schedule a job id names, for ids of the form `<scheduleId>:job-<n>`.
pub fn schedule_of_job(job_id: &str) -> Option<&str> {
    let (schedule, n) = job_id.rsplit_once(":job-")?;
    (!schedule.is_empty() && !n.is_empty() && n.chars().all(|c| c.is_ascii_digit())).then_some(schedule)
}

/// JobSchedulePatchParameter: replaces only the properties given.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JobSchedulePatch {
    #[serde(default)]
    pub schedule: Option<Schedule>,
    #[serde(default)]
    pub job_specification: Option<serde_json::Value>,
    #[serde(default)]
    pub metadata: Option<Vec<MetadataItem>>,
}

/// JobScheduleUpdateParameter (PUT): replaces every updatable property (`schedule` and
/// `jobSpecification` are required; metadata not given is removed).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JobScheduleUpdate {
    pub schedule: Schedule,
    pub job_specification: serde_json::Value,
    #[serde(default)]
    pub metadata: Option<Vec<MetadataItem>>,
}

/// JobScheduleAddParameter as read from the wire; `jobSpecification` is checked and turned
/// into a [`JobSpec`] by the handler.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JobScheduleAdd {
    pub id: String,
    #[serde(default)]
    pub display_name: Option<String>,
    pub schedule: Schedule,
    pub job_specification: serde_json::Value,
    #[serde(default)]
    pub metadata: Option<Vec<MetadataItem>>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone, Utc};

    fn t(min: i64) -> Timestamp {
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap() + Duration::minutes(min)
    }

    fn sched(window: Option<&str>, every: Option<&str>) -> Schedule {
        Schedule { start_window: window.map(str::to_string), recurrence_interval: every.map(str::to_string), ..Default::default() }
    }

    #[test]
    fn once_runs_one_job_then_completes() {
        let s = sched(None, None);
        assert_eq!(s.step(Some(t(0)), t(0), false, true), Step::CreateJob { due: t(0), next: None });
        assert_eq!(s.step(None, t(5), true, true), Step::Wait { next: None, wake: None });
        assert_eq!(s.step(None, t(6), false, true), Step::Complete);
    }

    #[test]
    fn recurrence_skips_while_a_job_is_active_and_windows_close() {
        let s = sched(Some("PT10M"), Some("PT1H"));
        assert_eq!(s.step(Some(t(0)), t(0), false, true), Step::CreateJob { due: t(0), next: Some(t(60)) });
        // Due at 60 while job 1 runs: wait until the window closes at 70.
        assert_eq!(s.step(Some(t(60)), t(61), true, true), Step::Wait { next: Some(t(60)), wake: Some(t(70)) });
        // Job 1 ends at 65: the job is created late, inside the window.
        assert_eq!(s.step(Some(t(60)), t(65), false, true), Step::CreateJob { due: t(60), next: Some(t(120)) });
        // Job ends at 75 instead: the window closed, the next recurrence is at 120.
        assert_eq!(s.step(Some(t(60)), t(75), false, true), Step::Wait { next: Some(t(120)), wake: Some(t(120)) });
    }

    #[test]
    fn the_window_never_reaches_into_the_next_recurrence() {
        let s = sched(Some("PT3H"), Some("PT1H"));
        assert_eq!(s.step(Some(t(60)), t(119), true, true), Step::Wait { next: Some(t(60)), wake: Some(t(120)) });
        // A clock moved by days skips to the recurrence in progress.
        assert_eq!(s.step(Some(t(60)), t(60 * 50 + 5), false, true), Step::CreateJob { due: t(60 * 50), next: Some(t(60 * 51)) });
    }

    #[test]
    fn do_not_run_until_and_after() {
        let mut s = sched(None, Some("PT1H"));
        s.do_not_run_until = Some(t(30));
        s.do_not_run_after = Some(t(100));
        assert_eq!(s.first_due(t(0)), t(30));
        assert_eq!(s.step(Some(t(30)), t(0), false, true), Step::Wait { next: Some(t(30)), wake: Some(t(30)) });
        assert_eq!(s.step(Some(t(30)), t(30), false, true), Step::CreateJob { due: t(30), next: Some(t(90)) });
        assert_eq!(s.step(Some(t(90)), t(90), false, true), Step::CreateJob { due: t(90), next: Some(t(150)) });
        // 150 is past doNotRunAfter: no more jobs; complete once the job ends.
        assert_eq!(s.step(Some(t(150)), t(95), true, true), Step::Wait { next: None, wake: None });
        assert_eq!(s.step(Some(t(150)), t(96), false, true), Step::Wait { next: None, wake: Some(t(100)) });
        assert_eq!(s.step(None, t(100), false, true), Step::Complete);
    }

    #[test]
    fn disabled_schedules_create_nothing_but_windows_pass() {
        let s = sched(Some("PT10M"), Some("PT1H"));
        assert_eq!(s.step(Some(t(60)), t(61), false, false), Step::Wait { next: Some(t(60)), wake: Some(t(70)) });
        // Enabled inside the window: the job is created.
        assert_eq!(s.step(Some(t(60)), t(69), false, true), Step::CreateJob { due: t(60), next: Some(t(120)) });
        // Enabled after it: the recurrence is lost.
        assert_eq!(s.step(Some(t(60)), t(71), false, true), Step::Wait { next: Some(t(120)), wake: Some(t(120)) });
    }

    #[test]
    fn job_ids_name_their_schedule() {
        assert_eq!(schedule_of_job("nightly:job-12"), Some("nightly"));
        assert_eq!(schedule_of_job("a:job-b:job-3"), Some("a:job-b"));
        for not in ["job-1", "x:job-", "x:job-1a", ":job-1"] {
            assert_eq!(schedule_of_job(not), None, "{not}");
        }
    }
}
