//! The `openbatch` command: `serve` (the Batch service), `agent` (one compute node; the
//! service starts these itself), `bench` (task throughput against the machine's raw
//! process-spawn rate), `app` (application packages), `clock` (the development clock) and
//! `versions`.

use clap::{Parser, Subcommand};
use openbatch::serve::{DEFAULT_ACCOUNT, DEFAULT_KEY, DEFAULT_LISTEN};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Parser)]
#[command(name = "openbatch", version, about = "A self-hosted service that speaks the Azure Batch data-plane REST API")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the Batch service (API, scheduler and local compute nodes).
    Serve {
        /// Address and port to listen on.
        #[arg(long, env = "OPENBATCH_LISTEN", default_value = DEFAULT_LISTEN)]
        listen: SocketAddr,
        /// Directory for the database and the compute nodes' files.
        #[arg(long, env = "OPENBATCH_DATA_DIR", default_value = "openbatch-data")]
        data_dir: PathBuf,
        /// Batch account name callers sign requests for.
        #[arg(long, env = "OPENBATCH_ACCOUNT", default_value = DEFAULT_ACCOUNT)]
        account: String,
        /// The account's base64 key (the default is a well-known development key).
        #[arg(long, env = "OPENBATCH_KEY", default_value = DEFAULT_KEY, hide_default_value = true)]
        key: String,
        /// Base URL for resource URLs and odata.nextLink (default: http://<the request's Host header>).
        #[arg(long, env = "OPENBATCH_PUBLIC_URL")]
        public_url: Option<String>,
        /// Blob service URL of the account's linked storage, for autoStorageContainerName
        /// (https://<account>.blob.core.windows.net, or Azurite's http://127.0.0.1:10000/devstoreaccount1).
        #[arg(long, env = "OPENBATCH_STORAGE_URL", requires = "storage_key")]
        storage_url: Option<String>,
        /// The linked storage account's key (base64); better set through the environment.
        #[arg(long, env = "OPENBATCH_STORAGE_KEY", hide_env_values = true, requires = "storage_url")]
        storage_key: Option<String>,
        /// Development option: run the service clock this many times as fast as real time
        /// (job schedules, wall-clock limits and retention follow it; 60 makes a minute pass
        /// in a second). Never use it in production.
        #[arg(long, env = "OPENBATCH_CLOCK_SPEED", default_value_t = 1.0)]
        clock_speed: f64,
        /// Development option: serve POST /openbatch/v1/clock {"advance": "PT1H"}, which moves
        /// the service clock on (signed with the account key). Never use it in production.
        #[arg(long, env = "OPENBATCH_CLOCK_CONTROL")]
        clock_control: bool,
        /// Development option: the shortest autoScaleEvaluationInterval accepted, an ISO 8601
        /// duration of at least 1 s (default PT5M, the Batch minimum). Never use it in production.
        #[arg(long, env = "OPENBATCH_MIN_AUTOSCALE_INTERVAL")]
        min_autoscale_interval: Option<String>,
        #[command(flatten)]
        limits: LimitArgs,
    },
    /// Run one compute node's agent (started by the service; also for remote machines).
    Agent {
        /// The service's base URL.
        #[arg(long, env = "OPENBATCH_SERVICE_URL")]
        service_url: String,
        /// The pool the node belongs to.
        #[arg(long, env = "OPENBATCH_POOL_ID")]
        pool_id: String,
        /// The node's id.
        #[arg(long, env = "OPENBATCH_NODE_ID")]
        node_id: String,
        /// The node's root directory.
        #[arg(long, env = "OPENBATCH_NODE_ROOT")]
        root: PathBuf,
        /// The node's secret (from the service).
        #[arg(long, env = "OPENBATCH_AGENT_TOKEN", hide_env_values = true)]
        token: String,
        /// Seconds to keep trying to reach a vanished service before ending the node.
        #[arg(long, default_value_t = 120)]
        orphan_timeout: u64,
    },
    /// Print the table of supported api-versions and what changes in each (markdown).
    Versions,
    /// Read or move on the development clock of a service started with `--clock-control`.
    Clock {
        /// Move the clock on by this ISO 8601 duration (e.g. PT1H, P1D); without it, print the time.
        #[arg(long)]
        advance: Option<String>,
        #[command(flatten)]
        service: ServiceArgs,
    },
    /// Preempt a Spot/low-priority compute node now, as Azure reclaiming its VM would (its
    /// tasks are requeued; the node is restored after `serve --spot-recovery`).
    Preempt {
        /// The node's pool.
        #[arg(long)]
        pool: String,
        /// The node's id.
        #[arg(long)]
        node: String,
        #[command(flatten)]
        service: ServiceArgs,
    },
    /// Manage the account's application packages on a running service.
    App {
        #[command(subcommand)]
        command: AppCommand,
        /// The service's URL.
        #[arg(long, env = "OPENBATCH_URL", default_value = "http://127.0.0.1:10400", global = true)]
        url: String,
        /// The Batch account name.
        #[arg(long, env = "OPENBATCH_ACCOUNT", default_value = DEFAULT_ACCOUNT, global = true)]
        account: String,
        /// The account's base64 key.
        #[arg(long, env = "OPENBATCH_KEY", default_value = DEFAULT_KEY, hide_default_value = true, global = true)]
        key: String,
    },
    /// Measure task throughput through the HTTP API against the raw spawn rate.
    Bench {
        /// Number of tasks.
        #[arg(long, default_value_t = 2000)]
        tasks: usize,
        /// Compute nodes in the pool.
        #[arg(long, default_value_t = 2)]
        nodes: u32,
        /// Task slots per node.
        #[arg(long, default_value_t = 8)]
        slots: u32,
        /// Measure the file API instead: Get File of a file of `--file-mib` MiB against reading it from disk.
        #[arg(long)]
        files: bool,
        /// File size for `--files`, MiB.
        #[arg(long, default_value_t = 1024)]
        file_mib: u64,
        /// Measure resource file downloads instead: this blob's URL (SAS included), fetched
        /// as a node fetches resource files, next to a plain download of the same blob.
        #[arg(long)]
        resource_url: Option<String>,
        /// Measure task dependencies instead: the scheduler's time per task in chains,
        /// fan-ins and fan-outs of 1,000, 10,000 and 100,000 tasks.
        #[arg(long)]
        deps: bool,
    },
}

/// Where a running service is and how to sign for it (`openbatch clock`, `openbatch preempt`).
#[derive(clap::Args)]
struct ServiceArgs {
    /// The service's URL.
    #[arg(long, env = "OPENBATCH_URL", default_value = "http://127.0.0.1:10400")]
    url: String,
    /// The Batch account name.
    #[arg(long, env = "OPENBATCH_ACCOUNT", default_value = DEFAULT_ACCOUNT)]
    account: String,
    /// The account's base64 key.
    #[arg(long, env = "OPENBATCH_KEY", default_value = DEFAULT_KEY, hide_default_value = true)]
    key: String,
}

/// Node quotas and Spot behaviour of `openbatch serve`.
#[derive(clap::Args)]
struct LimitArgs {
    /// Dedicated compute nodes the service runs at most over all pools; a resize beyond it
    /// stops with an `AccountCoreQuotaReached` resize error, as an Azure core quota does.
    #[arg(long, env = "OPENBATCH_MAX_DEDICATED_NODES", default_value_t = 256)]
    max_dedicated_nodes: u32,
    /// Spot/low-priority compute nodes the service runs at most over all pools
    /// (`AccountLowPriorityCoreQuotaReached` beyond it).
    #[arg(long, env = "OPENBATCH_MAX_LOW_PRIORITY_NODES", default_value_t = 256)]
    max_low_priority_nodes: u32,
    /// How long a preempted Spot node stays `preempted` before it is restored (ISO 8601).
    #[arg(long, env = "OPENBATCH_SPOT_RECOVERY", default_value = "PT30S")]
    spot_recovery: String,
    /// Chaos testing: the chance per hour that each running Spot node is preempted (e.g. 6
    /// preempts a node about every 10 minutes); 0 (the default) never preempts at random.
    #[arg(long, env = "OPENBATCH_SPOT_PREEMPTION_RATE", default_value_t = 0.0)]
    spot_preemption_rate: f64,
    /// Seed of the random preemptions (the same seed gives the same draws).
    #[arg(long, env = "OPENBATCH_CHAOS_SEED", default_value_t = 0)]
    chaos_seed: u64,
}

impl LimitArgs {
    fn limits(self) -> anyhow::Result<openbatch::scheduler::reactor::resize::PoolLimits> {
        let recovery = openbatch::model::time::parse_duration(&self.spot_recovery)
            .and_then(|d| d.0)
            .ok_or_else(|| anyhow::anyhow!("--spot-recovery: not an ISO 8601 duration: {}", self.spot_recovery))?;
        if !(self.spot_preemption_rate.is_finite() && self.spot_preemption_rate >= 0.0) {
            anyhow::bail!("--spot-preemption-rate must be a number of at least 0");
        }
        Ok(openbatch::scheduler::reactor::resize::PoolLimits {
            max_dedicated_nodes: self.max_dedicated_nodes,
            max_low_priority_nodes: self.max_low_priority_nodes,
            spot_recovery: recovery,
            spot_preemption_rate: self.spot_preemption_rate,
            chaos_seed: self.chaos_seed,
        })
    }
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("OPENBATCH_LOG").unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Serve {
            listen,
            data_dir,
            account,
            key,
            public_url,
            storage_url,
            storage_key,
            clock_speed,
            clock_control,
            min_autoscale_interval,
            limits,
        } => {
            let limits = limits.limits()?;
            let min_autoscale_interval = match min_autoscale_interval {
                None => None,
                Some(s) => match openbatch::model::time::parse_duration(&s).and_then(|d| d.0) {
                    Some(d) if d >= std::time::Duration::from_secs(1) => Some(d),
                    _ => {
                        anyhow::bail!("--min-autoscale-interval must be an ISO 8601 duration of at least 1 second (e.g. PT10S), not {s:?}")
                    }
                },
            };
            let rt = tokio::runtime::Runtime::new()?;
            rt.block_on(openbatch::serve::run(openbatch::serve::ServeConfig {
                listen,
                data_dir,
                account,
                key,
                public_url,
                auto_storage: storage_url.zip(storage_key).map(|(url, key)| openbatch::storage::resource_files::AutoStorage { url, key }),
                agent_exe: std::env::current_exe()?,
                clock_speed,
                clock_control,
                limits,
                min_autoscale_interval,
            }))
        }
        Command::Agent { service_url, pool_id, node_id, root, token, orphan_timeout } => {
            // One thread: tasks get PR_SET_PDEATHSIG tied to the thread that spawned them.
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            rt.block_on(openbatch::agent::run(openbatch::agent::AgentConfig {
                service_url,
                pool_id,
                node_id,
                token,
                root,
                orphan_timeout: Duration::from_secs(orphan_timeout),
            }))
        }
        Command::App { command, url, account, key } => {
            let rt = tokio::runtime::Runtime::new()?;
            rt.block_on(app_command(command, &url, &account, &key))
        }
        Command::Clock { advance, service: ServiceArgs { url, account, key } } => {
            let rt = tokio::runtime::Runtime::new()?;
            rt.block_on(clock_command(advance, &url, &account, &key))
        }
        Command::Preempt { pool, node, service: ServiceArgs { url, account, key } } => {
            let rt = tokio::runtime::Runtime::new()?;
            rt.block_on(async {
                let client = openbatch::client::Client::new(&url, &account, &key)?;
                let enc = |s: &str| percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string();
                let path = format!("/openbatch/v1/pools/{}/nodes/{}/preempt", enc(&pool), enc(&node));
                let (status, answer) = client.call(axum::http::Method::POST, &path, Some(&serde_json::json!({}))).await?;
                if status != 202 {
                    anyhow::bail!("the service answered {status}: {answer}");
                }
                println!("preempted {pool}/{node}");
                Ok(())
            })
        }
        Command::Versions => {
            print!("{}", openbatch::versions::markdown());
            Ok(())
        }
        Command::Bench { tasks, nodes, slots, files, file_mib, resource_url, deps } => {
            if deps {
                return openbatch::bench::deps::run(&[1_000, 10_000, 100_000]);
            }
            let rt = tokio::runtime::Runtime::new()?;
            if let Some(url) = resource_url {
                return rt.block_on(openbatch::bench::resources::run(&url, tasks.min(64)));
            }
            if files {
                return rt.block_on(openbatch::bench::run_files(file_mib));
            }
            rt.block_on(openbatch::bench::run(tasks, nodes, slots))
        }
    }
}

/// `openbatch clock [--advance D]`: prints the service clock, after moving it on.
async fn clock_command(advance: Option<String>, url: &str, account: &str, key: &str) -> anyhow::Result<()> {
    let client = openbatch::client::Client::new(url, account, key)?;
    let (status, answer) = match advance {
        Some(d) => client.call(axum::http::Method::POST, "/openbatch/v1/clock", Some(&serde_json::json!({"advance": d}))).await?,
        None => client.call(axum::http::Method::GET, "/openbatch/v1/clock", None).await?,
    };
    if status != 200 {
        anyhow::bail!("the service answered {status}: {answer}");
    }
    println!("{}\t(speed {})", answer["now"].as_str().unwrap_or(""), answer["speed"]);
    Ok(())
}

/// `openbatch app …`: application packages.
#[derive(Subcommand)]
enum AppCommand {
    /// Add a package version (a zip file) of an application (created when new).
    Add {
        /// Application id (letters, digits, hyphens, underscores).
        id: String,
        /// Package version.
        version: String,
        /// The zip file.
        file: PathBuf,
        /// Make this the application's default version.
        #[arg(long)]
        default: bool,
        /// The application's display name.
        #[arg(long)]
        display_name: Option<String>,
    },
    /// List the applications and their package versions.
    List,
}

async fn app_command(command: AppCommand, url: &str, account: &str, key: &str) -> anyhow::Result<()> {
    let client = openbatch::client::Client::new(url, account, key)?;
    match command {
        AppCommand::Add { id, version, file, default, display_name } => {
            let body = std::fs::read(&file).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
            let enc = |s: &str| percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string();
            let path = format!("/openbatch/v1/applications/{}/versions/{}", enc(&id), enc(&version));
            let mut query = Vec::new();
            if default {
                query.push("default=true".to_string());
            }
            if let Some(name) = display_name {
                query.push(format!("displayName={}", enc(&name)));
            }
            let (status, answer) = client.put_raw(&path, &query.join("&"), body).await?;
            if status != 201 {
                anyhow::bail!("the service answered {status}: {answer}");
            }
            println!("added {id} {version}");
            Ok(())
        }
        AppCommand::List => {
            let (status, answer) = client.call(axum::http::Method::GET, "/applications", None).await?;
            if status != 200 {
                anyhow::bail!("the service answered {status}: {answer}");
            }
            for a in answer["value"].as_array().into_iter().flatten() {
                let versions: Vec<&str> = a["versions"].as_array().into_iter().flatten().filter_map(|v| v.as_str()).collect();
                println!("{}\t{}", a["id"].as_str().unwrap_or(""), versions.join(", "));
            }
            Ok(())
        }
    }
}
