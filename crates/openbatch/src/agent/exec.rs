//! Running one execution (start task or task) as Batch does on a Linux node: the documented
//! directory layout (`<task dir>/wd`, `stdout.txt`, `stderr.txt`), the `AZ_BATCH_*`
//! environment, the command line split into arguments and run without a shell, in its own
//! process group so a kill or a wall-clock limit ends the whole tree.

use super::protocol::ResourceUsage;
use super::protocol::{ExecFailure, ExecKind, ExecResult, ExecSpec, FailureKind};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::sync::oneshot;

/// What the node knows about itself, for the `AZ_BATCH_*` variables.
#[derive(Debug, Clone)]
pub struct NodeContext {
    pub root: PathBuf,
    pub account_name: String,
    pub account_url: String,
    pub pool_id: String,
    pub node_id: String,
    pub is_dedicated: bool,
    /// The service's base URL (application packages are downloaded from it).
    pub service_url: String,
    /// The node's agent token, presented when downloading packages (never given to tasks).
    pub token: String,
    /// The certificates installed on the node.
    pub certificates: Vec<super::protocol::NodeCertificate>,
}

impl NodeContext {
    /// A GET of the service's agent endpoint `path` (`/agent/v1/...`), authenticated as this
    /// node (`x-openbatch-pool`, `x-openbatch-node`, `x-openbatch-token`).
    pub fn service_get(&self, path: &str) -> reqwest::RequestBuilder {
        reqwest::Client::new()
            .get(format!("{}{path}", self.service_url.trim_end_matches('/')))
            .header("x-openbatch-pool", &self.pool_id)
            .header("x-openbatch-node", &self.node_id)
            .header("x-openbatch-token", &self.token)
    }
}

/// Directory of an execution relative to the node root: `startup` or
/// `workitems/<job>/job-1/<task>`.
pub fn exec_dir(kind: &ExecKind) -> String {
    match kind {
        ExecKind::StartTask => "startup".to_string(),
        ExecKind::Task { job_id, task_id } => format!("workitems/{job_id}/job-1/{task_id}"),
        ExecKind::JobPreparation { job_id } => format!("workitems/{job_id}/job-1/jobpreparation"),
        ExecKind::JobRelease { job_id } => format!("workitems/{job_id}/job-1/jobrelease"),
    }
}

/// The node's standard directories, created when the agent starts.
pub const NODE_DIRS: &[&str] = &["applications", "fsmounts", "shared", "startup", "volatile", "volatile/startup", "workitems"];

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

fn failure(kind: FailureKind, code: &str, message: &str, detail: impl Into<String>) -> Option<ExecFailure> {
    Some(ExecFailure { kind, code: code.into(), message: message.into(), detail: detail.into(), details: Vec::new() })
}

/// Builds the environment of an execution: a base `PATH`/`HOME`, the `AZ_BATCH_*` variables,
/// then the caller's settings (which win).
pub fn environment(ctx: &NodeContext, spec: &ExecSpec, task_dir: &Path) -> Vec<(String, String)> {
    let root = ctx.root.display().to_string();
    let wd = task_dir.join("wd").display().to_string();
    let shared = ctx.root.join("shared").display().to_string();
    let base_path = std::env::var("PATH").unwrap_or_else(|_| "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into());
    let mut env = vec![
        ("PATH".to_string(), format!("{base_path}:{shared}:{wd}")),
        ("HOME".to_string(), wd.clone()),
        ("AZ_BATCH_ACCOUNT_NAME".to_string(), ctx.account_name.clone()),
        ("AZ_BATCH_ACCOUNT_URL".to_string(), format!("{}/", ctx.account_url.trim_end_matches('/'))),
        ("AZ_BATCH_POOL_ID".to_string(), ctx.pool_id.clone()),
        ("AZ_BATCH_NODE_ID".to_string(), ctx.node_id.clone()),
        ("AZ_BATCH_NODE_IS_DEDICATED".to_string(), ctx.is_dedicated.to_string()),
        ("AZ_BATCH_NODE_ROOT_DIR".to_string(), root),
        ("AZ_BATCH_NODE_SHARED_DIR".to_string(), shared),
        ("AZ_BATCH_NODE_STARTUP_DIR".to_string(), ctx.root.join("startup").display().to_string()),
        ("AZ_BATCH_NODE_MOUNTS_DIR".to_string(), ctx.root.join("fsmounts").display().to_string()),
        ("AZ_BATCH_TASK_DIR".to_string(), task_dir.display().to_string()),
        ("AZ_BATCH_TASK_WORKING_DIR".to_string(), wd),
        ("AZ_BATCH_CERTIFICATES_DIR".to_string(), task_dir.join("certs").display().to_string()),
    ];
    if let Some(m) = &spec.multi_instance {
        env.push(("AZ_BATCH_HOST_LIST".into(), m.hosts.join(",")));
        env.push(("AZ_BATCH_NODE_LIST".into(), m.hosts.join(";")));
        env.push(("AZ_BATCH_MASTER_NODE".into(), m.master.clone()));
        env.push(("AZ_BATCH_IS_CURRENT_NODE_MASTER".into(), m.is_master.to_string()));
        env.push(("AZ_BATCH_TASK_SHARED_DIR".into(), m.shared_dir.clone()));
    }
    match &spec.kind {
        ExecKind::StartTask => {
            env.push(("AZ_BATCH_TASK_USER".into(), "_azbatchtask_start".into()));
            env.push(("AZ_BATCH_TASK_USER_IDENTITY".into(), if spec.admin { "TaskAdmin" } else { "TaskNonAdmin" }.into()));
        }
        ExecKind::Task { job_id, task_id: _ } | ExecKind::JobPreparation { job_id } | ExecKind::JobRelease { job_id } => {
            let task_id = match &spec.kind {
                ExecKind::Task { task_id, .. } => task_id.as_str(),
                ExecKind::JobPreparation { .. } => "jobpreparation",
                _ => "jobrelease",
            };
            env.push(("AZ_BATCH_JOB_ID".into(), spec.job_id.clone().unwrap_or_else(|| job_id.clone())));
            env.push(("AZ_BATCH_TASK_ID".into(), task_id.to_string()));
            env.push(("AZ_BATCH_TASK_USER".into(), "_azbatch".into()));
            env.push(("AZ_BATCH_TASK_USER_IDENTITY".into(), if spec.admin { "PoolAdmin" } else { "PoolNonAdmin" }.into()));
            if spec.job_prep && !matches!(spec.kind, ExecKind::JobPreparation { .. }) {
                let prep = ctx.root.join(exec_dir(&ExecKind::JobPreparation { job_id: job_id.clone() }));
                env.push(("AZ_BATCH_JOB_PREP_DIR".into(), prep.display().to_string()));
                env.push(("AZ_BATCH_JOB_PREP_WORKING_DIR".into(), prep.join("wd").display().to_string()));
            }
        }
    }
    for (k, v) in &spec.environment {
        if let Some(slot) = env.iter_mut().find(|(name, _)| name == k) {
            slot.1 = v.clone();
        } else {
            env.push((k.clone(), v.clone()));
        }
    }
    env
}

/// Runs `spec` to its end. `started` is called once the process exists; a message on `kill`
/// ends the process group (reported as `TaskEnded`).
pub async fn run(ctx: &NodeContext, spec: &ExecSpec, kill: oneshot::Receiver<()>, started: impl FnOnce(i64)) -> ExecResult {
    let mut result = ExecResult {
        kind: spec.kind.clone(),
        dispatch_id: spec.dispatch_id,
        started_ms: None,
        ended_ms: 0,
        exit_code: None,
        failure: None,
        usage: None,
    };
    let task_dir = ctx.root.join(exec_dir(&spec.kind));
    let wd = task_dir.join("wd");
    let files = (|| -> std::io::Result<(std::fs::File, std::fs::File)> {
        std::fs::create_dir_all(&wd)?;
        std::fs::create_dir_all(task_dir.join("certs"))?;
        Ok((std::fs::File::create(task_dir.join("stdout.txt"))?, std::fs::File::create(task_dir.join("stderr.txt"))?))
    })();
    let (stdout, stderr) = match files {
        Ok(f) => f,
        Err(e) => {
            result.failure = failure(
                FailureKind::PreProcessing,
                "ResourceDirectoryCreateFailed",
                "The task directory could not be created",
                e.to_string(),
            );
            result.ended_ms = now_ms();
            return result;
        }
    };
    // Certificates, application packages and resource files come first: a failure ends the
    // execution before its command runs.
    if let Err(f) = super::certificates::install_all(ctx, &spec.kind, &task_dir.join("certs")).await {
        result.failure = Some(f);
        result.ended_ms = now_ms();
        return result;
    }
    let package_env = match super::packages::install_all(ctx, &spec.app_packages).await {
        Ok(env) => env,
        Err(f) => {
            result.failure = Some(f);
            result.ended_ms = now_ms();
            return result;
        }
    };
    if let Some(m) = &spec.multi_instance {
        let shared = Path::new(&m.shared_dir);
        let prepared = match std::fs::create_dir_all(shared) {
            Ok(()) => crate::storage::resource_files::download_all(shared, &m.common_resource_files).await.map(|_| ()),
            Err(e) => Err(crate::storage::TransferError {
                kind: FailureKind::PreProcessing,
                code: "ResourceDirectoryCreateFailed",
                message: "The task's shared directory could not be created".into(),
                details: vec![("Reason".into(), e.to_string())],
            }),
        };
        if let Err(e) = prepared {
            result.failure = Some(e.into());
            result.ended_ms = now_ms();
            return result;
        }
    }
    if let Err(e) = crate::storage::resource_files::download_all(&wd, &spec.resource_files).await {
        result.failure = Some(e.into());
        result.ended_ms = now_ms();
        return result;
    }
    let argv = match shell_words::split(&spec.command_line) {
        Ok(a) if !a.is_empty() => a,
        Ok(_) => {
            result.failure = failure(
                FailureKind::PreProcessing,
                "CommandLaunchFailed",
                "Failed to launch the specified command line",
                "The command line is empty",
            );
            result.ended_ms = now_ms();
            return result;
        }
        Err(e) => {
            result.failure = failure(
                FailureKind::PreProcessing,
                "CommandLaunchFailed",
                "Failed to launch the specified command line",
                format!("The command line cannot be split into arguments: {e}"),
            );
            result.ended_ms = now_ms();
            return result;
        }
    };
    let mut cmd = std::process::Command::new(&argv[0]);
    cmd.args(&argv[1..])
        .current_dir(&wd)
        .env_clear()
        .envs(environment(ctx, spec, &task_dir).into_iter().chain(package_env))
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .process_group(0);
    // SAFETY: prctl is async-signal-safe; it only asks the kernel to kill the task when the
    // agent dies, so no task outlives its node.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    let child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            result.failure = if e.kind() == std::io::ErrorKind::NotFound {
                failure(FailureKind::PreProcessing, "CommandProgramNotFound", "The specified command program is not found", e.to_string())
            } else {
                failure(FailureKind::PreProcessing, "CommandLaunchFailed", "Failed to launch the specified command line", e.to_string())
            };
            result.ended_ms = now_ms();
            return result;
        }
    };
    let start = now_ms();
    result.started_ms = Some(start);
    started(start);
    let pid = child.id() as i32;
    // The agent reaps the process itself with wait4, which also gives its resource usage.
    drop(child);
    let mut waiter = tokio::task::spawn_blocking(move || reap(pid));
    let limit = spec.max_wall_clock_secs.map(Duration::from_secs_f64);
    let timeout = async {
        match limit {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending().await,
        }
    };
    let kill_group = || {
        // SAFETY: sending a signal to the task's own process group.
        unsafe {
            libc::killpg(pid, libc::SIGKILL);
        }
    };
    let reaped = tokio::select! {
        r = &mut waiter => r,
        _ = kill => {
            kill_group();
            result.failure = failure(FailureKind::Killed, "TaskEnded", "Task Was Ended by User Request", "The task was terminated");
            waiter.await
        }
        _ = timeout => {
            kill_group();
            result.failure = failure(FailureKind::WallClockTimeout, "TaskEnded", "The task exceeded its maximum wall clock time and was terminated", format!("maxWallClockTime of {:?} reached", limit.unwrap_or_default()));
            waiter.await
        }
    };
    // Reap what is left of the group once the leader exited.
    kill_group();
    match reaped {
        Ok(Ok((code, usage))) => {
            result.exit_code = Some(code);
            result.usage = Some(usage);
        }
        Ok(Err(e)) => {
            result.failure.get_or_insert(ExecFailure {
                kind: FailureKind::Other,
                code: "Unknown".into(),
                message: "The task process could not be waited for".into(),
                detail: e.to_string(),
                details: Vec::new(),
            });
        }
        Err(e) => {
            result.failure.get_or_insert(ExecFailure {
                kind: FailureKind::Other,
                code: "Unknown".into(),
                message: "The task process could not be waited for".into(),
                detail: e.to_string(),
                details: Vec::new(),
            });
        }
    }
    // Output files go up after the process ended and before the result is reported.
    if !spec.output_files.is_empty() {
        let succeeded = result.failure.is_none() && result.exit_code == Some(0);
        if let Err(e) = crate::storage::output_files::upload_all(&task_dir, &wd, &spec.output_files, succeeded).await {
            result.failure.get_or_insert(e.into());
        }
    }
    result.ended_ms = now_ms();
    result
}

/// Waits for process `pid` to end (`wait4`) and returns its exit code (128 + signal for a
/// signal, as shells report it) and the resources it used.
fn reap(pid: i32) -> std::io::Result<(i32, ResourceUsage)> {
    let mut status = 0;
    // SAFETY: rusage is plain data; wait4 fills it for our own child.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: waiting for a child this agent spawned and has not reaped.
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
        if r == pid {
            break;
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
    let code = if libc::WIFEXITED(status) { libc::WEXITSTATUS(status) } else { 128 + libc::WTERMSIG(status) };
    let ms = |tv: libc::timeval| (tv.tv_sec as u64) * 1000 + (tv.tv_usec as u64) / 1000;
    Ok((
        code,
        ResourceUsage {
            user_ms: ms(ru.ru_utime),
            kernel_ms: ms(ru.ru_stime),
            read_blocks: ru.ru_inblock as u64,
            write_blocks: ru.ru_oublock as u64,
        },
    ))
}
