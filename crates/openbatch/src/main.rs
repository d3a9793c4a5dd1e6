//! The `openbatch` command: `serve` (the Batch service), `agent` (one compute node; the
//! service starts these itself) and `bench` (task throughput against the machine's raw
//! process-spawn rate).

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
    },
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("OPENBATCH_LOG").unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Serve { listen, data_dir, account, key, public_url } => {
            let rt = tokio::runtime::Runtime::new()?;
            rt.block_on(openbatch::serve::run(openbatch::serve::ServeConfig {
                listen,
                data_dir,
                account,
                key,
                public_url,
                agent_exe: std::env::current_exe()?,
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
        Command::Versions => {
            print!("{}", openbatch::versions::markdown());
            Ok(())
        }
        Command::Bench { tasks, nodes, slots } => {
            let rt = tokio::runtime::Runtime::new()?;
            rt.block_on(openbatch::bench::run(tasks, nodes, slots))
        }
    }
}
