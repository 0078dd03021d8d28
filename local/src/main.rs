//! The `ripple` command: `ripple dev` runs the whole pipeline locally; `ripple bench` measures it.

use std::net::IpAddr;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use ripple::dev::faults::FaultSpec;
use ripple::dev::mapping::MappingConfig;
use ripple::dev::{DevOptions, DevServer};

#[derive(Parser)]
#[command(
    name = "ripple",
    version,
    about = "Ripple: real-time fan-out on AWS, run locally"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the whole pipeline on this machine: DynamoDB Local, API Gateway (WebSocket and
    /// @connections), the stream trigger, and the connect/ingest/fanout handlers.
    Dev(Box<DevArgs>),
    /// Measure Ripple: `bench fanout` (one stream batch: Ripple vs a naive fan-out vs raw HTTP)
    /// and `bench e2e` (players over real WebSockets against `ripple dev`).
    Bench {
        #[command(subcommand)]
        command: ripple::bench::BenchCommand,
    },
    /// Run the stale-connection sweep once against a running stack (`ripple dev` sweeps every
    /// minute by itself).
    Sweep(SweepArgs),
    /// Publish a chat message (`--text`) or a position (`--position x,y[,z]`) into a channel as
    /// the reserved sender `server`: to the running `ripple dev` by default, or to a deployed
    /// stack with `--table`.
    Publish(ripple::publish::PublishArgs),
    /// Check a running stack end to end: two clients, welcome, snapshot, a position and a chat
    /// message each way, the error frame; prints round-trip times, exits non-zero on a miss.
    Smoke(ripple::smoke::SmokeArgs),
    /// Run a recorded stream batch (Lambda's JSON) through fanout against a running stack.
    Replay(ripple::redrive::ReplayArgs),
    /// Fetch the batches the stream mapping gave up on (its on-failure messages) back from the
    /// stream and deliver them through fanout.
    Redrive(ripple::redrive::RedriveArgs),
}

#[derive(Args)]
struct SweepArgs {
    /// DynamoDB endpoint (the `DynamoDB` URL `ripple dev` prints).
    #[arg(long)]
    dynamodb_endpoint: String,
    /// Table name.
    #[arg(long, default_value = "ripple")]
    table: String,
    /// `@connections` base URL (`ripple dev`: http://127.0.0.1:3001).
    #[arg(long, default_value = "http://127.0.0.1:3001")]
    connections_endpoint: String,
    /// Check connections older than this many seconds.
    #[arg(long, default_value_t = 600)]
    check_after_secs: u64,
}

#[derive(Args)]
struct DevArgs {
    /// Port for WebSockets, @connections, /demo and /metrics (0 picks a free one).
    #[arg(long, default_value_t = 3001)]
    port: u16,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    host: IpAddr,
    /// Use this DynamoDB (e.g. http://127.0.0.1:8000) instead of starting DynamoDB Local.
    #[arg(long)]
    dynamodb_endpoint: Option<String>,
    /// The API's one stage: clients connect at `/{stage}` (or `/`), fanout posts to
    /// `/{stage}/@connections`; any other stage answers 403.
    #[arg(long, default_value = "local", value_parser = stage_name)]
    stage: String,
    /// Stream: shards the table's stream is split into (records placed by a hash of the
    /// partition key; a new on-demand table on AWS already has several).
    #[arg(long, default_value_t = ripple_common::deploy::LOCAL_STREAM_SHARDS)]
    shards: usize,
    /// Stream trigger: concurrent batches per shard, order kept per item key only (as deployed).
    #[arg(long, default_value_t = ripple_common::deploy::FANOUT_MAPPING.parallelization_factor)]
    parallelization_factor: usize,
    /// Stream trigger: how often each shard is polled, in ms (AWS: 250). Lower is kinder than
    /// AWS: faster than anything deployed will be.
    #[arg(long, value_name = "MS", default_value_t = ripple_common::deploy::STREAM_POLL_INTERVAL_MS)]
    poll_interval: u64,
    /// Stream trigger: most records per fanout invocation (1-10000).
    #[arg(long, default_value_t = ripple_common::deploy::FANOUT_MAPPING.batch_size)]
    batch_size: usize,
    /// Stream trigger: how long to gather records before invoking, in ms (AWS takes whole
    /// seconds, 0-300).
    #[arg(long, value_name = "MS", default_value_t = ripple_common::deploy::FANOUT_MAPPING.maximum_batching_window_secs * 1000)]
    batching_window: u64,
    /// Stream trigger: the fanout function's timeout, in seconds (a batch running longer fails).
    #[arg(long, value_name = "SECS", default_value_t = ripple_common::deploy::FANOUT_MAPPING.function_timeout_secs)]
    function_timeout: u64,
    /// Stream trigger: do not split a failing batch in two (deployed: split).
    #[arg(long)]
    no_bisect: bool,
    /// Stream trigger: retries of a failing batch before it goes to the on-failure destination
    /// (-1: until the record is too old).
    #[arg(long, default_value_t = ripple_common::deploy::FANOUT_MAPPING.maximum_retry_attempts, allow_hyphen_values = true)]
    max_retries: i64,
    /// Stream trigger: records older than this many seconds go to the on-failure destination
    /// (-1: no limit).
    #[arg(long, value_name = "SECS", default_value_t = ripple_common::deploy::FANOUT_MAPPING.maximum_record_age_secs, allow_hyphen_values = true)]
    max_record_age: i64,
    /// Stream trigger: the on-failure destination, a folder that receives one JSON file per
    /// discarded batch (Lambda's SQS message); `ripple redrive` reads it.
    #[arg(long, value_name = "DIR")]
    on_failure_dir: Option<std::path::PathBuf>,
    /// Stream trigger: the chance (0-1) that a processed batch is invoked once more (AWS
    /// delivers at least once; default 0).
    #[arg(long, value_name = "P", default_value_t = 0.0, value_parser = probability)]
    redeliver: f64,
    /// Stream: what places a record in a shard (partition key, or the whole item key).
    #[arg(long, value_enum, default_value_t = ripple::dev::mapping::ShardBy::Partition)]
    shard_by: ripple::dev::mapping::ShardBy,
    /// API Gateway: hold each upgrade this many ms after `$connect` returned 200, answering
    /// `@connections` posts 410 meanwhile (a slow handshake or network).
    #[arg(long, value_name = "MS", default_value_t = 0)]
    connect_delay: u64,
    /// API Gateway: handle each connection's frames one at a time, in the order sent (kinder
    /// than AWS, where every frame is its own invocation and nothing orders them).
    #[arg(long)]
    serial_frames: bool,
    /// API Gateway: each frame handled concurrently waits a random time up to this many ms
    /// first, so races between a connection's frames show.
    #[arg(long, value_name = "MS", default_value_t = 10)]
    frame_jitter: u64,
    /// API Gateway: the account's @connections requests per second, shared by every fanout
    /// instance (AWS's default quota: 10000; 0: no limit). Above it: 429.
    #[arg(long, value_name = "N", default_value_t = ripple::dev::gateway::ACCOUNT_CONNECTIONS_RATE)]
    connections_rate: u32,
    /// API Gateway: client frames handled at once across all connections (0: no bound); kept
    /// low so DynamoDB Local keeps up with its own stream.
    #[arg(long, value_name = "N", default_value_t = ripple::dev::gateway::INGEST_CONCURRENCY)]
    ingest_concurrency: usize,
    /// API Gateway: frames queued for a client that does not read its socket; posts to it
    /// answer 429 beyond that (and fanout disconnects it as a slow consumer).
    #[arg(long, value_name = "N", default_value_t = ripple::dev::registry::OUTBOUND_FRAMES, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    outbound_frames: usize,
    /// Close connections idle this long, in seconds (API Gateway: 600).
    #[arg(long, default_value_t = 600)]
    idle_timeout_secs: u64,
    /// Close connections after this long, in seconds (API Gateway: 7200).
    #[arg(long, default_value_t = 7200)]
    max_connection_secs: u64,
    /// Inject faults on @connections POSTs and $disconnect events, e.g.
    /// gone=0.1,throttle=0.05,error=0.02,latency=50ms,disconnect-loss=0.5,disconnect-delay=2000ms
    #[arg(long)]
    fault: Option<FaultSpec>,
    /// What the connect, ingest and fanout handlers run with (the deployed functions read the
    /// same settings from their environment).
    #[command(flatten)]
    settings: ripple_common::config::Settings,
    /// Run the stale-connection sweep every N seconds (0: never).
    #[arg(long, default_value_t = 60)]
    sweep_secs: u64,
    /// Print a one-line summary of the counters every N seconds.
    #[arg(long, value_name = "SECONDS", num_args = 0..=1, default_missing_value = "5")]
    stats: Option<u64>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Dev(args) => {
            ripple_common::telemetry::init_local();
            dev(*args).await
        }
        // The benches keep stdout for their results and log to stderr.
        Command::Bench { command } => ripple::bench::run(command).await,
        Command::Sweep(args) => {
            ripple_common::telemetry::init_local();
            sweep(args).await
        }
        Command::Publish(args) => ripple::publish::run(args).await,
        Command::Smoke(args) => ripple::smoke::run(args).await,
        Command::Replay(args) => {
            ripple_common::telemetry::init_local();
            ripple::redrive::replay(args).await
        }
        Command::Redrive(args) => {
            ripple_common::telemetry::init_local();
            ripple::redrive::redrive(args).await
        }
    }
}

async fn dev(args: DevArgs) -> anyhow::Result<()> {
    let opts = DevOptions {
        host: args.host,
        port: args.port,
        dynamodb_endpoint: args.dynamodb_endpoint,
        settings: args.settings,
        stage: args.stage,
        mapping: MappingConfig {
            shards: args.shards.max(1),
            parallelization_factor: args.parallelization_factor.clamp(1, 10),
            batch_size: args.batch_size.clamp(1, 10_000),
            batching_window: Duration::from_millis(args.batching_window),
            poll_interval: Duration::from_millis(args.poll_interval.max(1)),
            function_timeout: Duration::from_secs(args.function_timeout.max(1)),
            bisect_on_error: !args.no_bisect,
            max_retries: u32::try_from(args.max_retries).ok(),
            max_record_age: u64::try_from(args.max_record_age)
                .ok()
                .map(Duration::from_secs),
            on_failure_dir: args.on_failure_dir,
            redeliver: args.redeliver,
            shard_by: args.shard_by,
        },
        connect_delay: Duration::from_millis(args.connect_delay),
        serial_frames: args.serial_frames,
        frame_jitter: Duration::from_millis(args.frame_jitter),
        connections_rate: args.connections_rate,
        ingest_concurrency: args.ingest_concurrency,
        outbound_frames: args.outbound_frames,
        idle_timeout: Duration::from_secs(args.idle_timeout_secs.max(1)),
        max_duration: Duration::from_secs(args.max_connection_secs.max(1)),
        faults: args.fault.unwrap_or_default(),
        stats: args.stats.map(|s| Duration::from_secs(s.max(1))),
        sweep_every: (args.sweep_secs > 0).then(|| Duration::from_secs(args.sweep_secs)),
        sweep: fanout::sweep::SweepConfig::default(),
    };
    eprintln!("ripple dev: starting (DynamoDB Local, table, gateway, stream trigger)…");
    let server = DevServer::start(opts).await?;
    println!("{}", server.ready_line());
    wait_for_stop().await?;
    eprintln!("ripple dev: shutting down");
    server.shutdown().await;
    Ok(())
}

/// Ctrl-C or SIGTERM.
async fn wait_for_stop() -> anyhow::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r?,
        _ = term.recv() => {}
    }
    Ok(())
}

async fn sweep(args: SweepArgs) -> anyhow::Result<()> {
    use ripple_common::config::{Settings, dynamodb_client, local_sdk_config};
    let sdk = local_sdk_config();
    let store = ripple_common::store::Store::new(
        dynamodb_client(&sdk, Some(&args.dynamodb_endpoint)),
        args.table.clone(),
    );
    let connections =
        ripple_common::connections::Connections::new(sdk, Some(args.connections_endpoint.clone()));
    let state = fanout::FanoutState::new(store, connections, &Settings::for_table(args.table));
    let config = fanout::sweep::SweepConfig {
        check_after: Duration::from_secs(args.check_after_secs),
        ..fanout::sweep::SweepConfig::default()
    };
    let report = fanout::sweep::sweep(&state, &config, ripple_common::now_ms()).await;
    println!(
        "swept: examined {} alive {} deleted {} unknown {} (failed shards {})",
        report.examined, report.alive, report.deleted, report.unknown, report.failed_shards
    );
    Ok(())
}

/// A stage name as API Gateway allows it: letters, digits, `-` and `_`, at most 128.
fn stage_name(s: &str) -> Result<String, String> {
    let ok = !s.is_empty()
        && s.len() <= 128
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(s.to_owned())
    } else {
        Err(format!(
            "`{s}` is not a stage name: use letters, digits, `-` and `_` (at most 128)"
        ))
    }
}

/// A chance: a number from 0 to 1.
fn probability(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(p) if (0.0..=1.0).contains(&p) => Ok(p),
        _ => Err(format!("`{s}` is not a chance: give a number from 0 to 1")),
    }
}
