//! `ripple dev`: the whole pipeline on one machine. DynamoDB Local (started unless an endpoint
//! is given), the table (stream, TTL, index), API Gateway's WebSocket and `@connections` APIs on
//! one port ([`gateway`]), and the stream trigger ([`mapping`]) calling the very `connect`,
//! `ingest` and `fanout` handlers Lambda runs.

pub mod faults;
pub mod gateway;
pub mod mapping;
pub mod metrics;
pub mod registry;
pub mod routes;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use connect::ConnectState;
use fanout::FanoutState;
use ingest::IngestState;
use ripple_common::config::{Settings, dynamodb_client, local_sdk_config};
use ripple_common::connections::Connections;
use ripple_common::store::Store;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::dynamodb_local::DynamoDbLocal;
use crate::stream::{StartAt, StreamReader, streams_client};
use faults::{FaultSpec, Faults};
use gateway::{Gateway, GatewayConfig};
use mapping::MappingConfig;
use metrics::Metrics;

/// Everything `ripple dev` can be told.
#[derive(Debug, Clone)]
pub struct DevOptions {
    pub host: IpAddr,
    /// 0 picks a free port.
    pub port: u16,
    pub dynamodb_endpoint: Option<String>,
    /// What the handlers run with (the table's name among them); `connections_endpoint` is set
    /// to this server's.
    pub settings: Settings,
    pub stage: String,
    pub mapping: MappingConfig,
    pub idle_timeout: Duration,
    pub max_duration: Duration,
    /// How long API Gateway takes to establish a connection after `$connect` returned 200
    /// (posts answer 410 meanwhile).
    pub connect_delay: Duration,
    /// Handle a connection's frames one at a time, in order (AWS does not: see [`gateway`]).
    pub serial_frames: bool,
    /// Each concurrently handled frame waits a random time up to this first.
    pub frame_jitter: Duration,
    /// The account's `@connections` requests per second, shared by every lane (0: no limit).
    pub connections_rate: u32,
    /// [`GatewayConfig::ingest_concurrency`].
    pub ingest_concurrency: usize,
    /// [`GatewayConfig::outbound_frames`].
    pub outbound_frames: usize,
    pub faults: FaultSpec,
    /// Print a one-line summary this often.
    pub stats: Option<Duration>,
    /// Run the stale-connection sweep this often (None: never).
    pub sweep_every: Option<Duration>,
    pub sweep: fanout::sweep::SweepConfig,
}

impl Default for DevOptions {
    fn default() -> Self {
        Self {
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 3001,
            dynamodb_endpoint: None,
            settings: Settings::for_table("ripple"),
            stage: "local".into(),
            mapping: MappingConfig::default(),
            idle_timeout: Duration::from_secs(600),
            max_duration: Duration::from_secs(7200),
            connect_delay: Duration::ZERO,
            serial_frames: GatewayConfig::default().serial_frames,
            frame_jitter: GatewayConfig::default().frame_jitter,
            connections_rate: GatewayConfig::default().connections_rate,
            ingest_concurrency: GatewayConfig::default().ingest_concurrency,
            outbound_frames: GatewayConfig::default().outbound_frames,
            faults: FaultSpec::default(),
            stats: None,
            sweep_every: Some(Duration::from_secs(60)),
            sweep: fanout::sweep::SweepConfig::default(),
        }
    }
}

/// Warm fanout instances, as Lambda keeps them: a batch takes an idle one (or a new one starts)
/// and has it to itself, with its own pacer, caches and limiter; concurrent batches never share
/// one. A batch that panics loses its instance, as a crashed Lambda environment is replaced.
#[derive(Clone)]
struct Instances {
    idle: Arc<std::sync::Mutex<Vec<Arc<FanoutState>>>>,
    start: Arc<dyn Fn() -> Arc<FanoutState> + Send + Sync>,
}

impl Instances {
    fn new(start: impl Fn() -> Arc<FanoutState> + Send + Sync + 'static) -> Self {
        Self {
            idle: Arc::default(),
            start: Arc::new(start),
        }
    }

    fn take(&self) -> Arc<FanoutState> {
        let warm = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        warm.unwrap_or_else(|| (self.start)())
    }

    fn give_back(&self, instance: Arc<FanoutState>) {
        if let Ok(mut idle) = self.idle.lock() {
            idle.push(instance);
        }
    }
}

/// A running local stack.
#[derive(Debug)]
pub struct DevServer {
    pub addr: SocketAddr,
    /// The faults `@connections` injects (changeable while running).
    pub faults: Faults,
    pub dynamodb_endpoint: String,
    /// Where fanout posts: `http://{addr}/{stage}`, as deployed (the stage's endpoint).
    pub connections_endpoint: String,
    pub table: String,
    pub metrics: Metrics,
    pub store: Store,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    dynamodb: Option<DynamoDbLocal>,
}

impl DevServer {
    /// Starts everything; returns once it serves.
    pub async fn start(opts: DevOptions) -> anyhow::Result<Self> {
        let (dynamodb, endpoint) = match &opts.dynamodb_endpoint {
            Some(url) => (None, url.clone()),
            None => {
                let local = DynamoDbLocal::start()
                    .await
                    .context("starting DynamoDB Local")?;
                let url = local.endpoint.clone();
                (Some(local), url)
            }
        };
        let sdk = local_sdk_config();
        let store = Store::new(
            dynamodb_client(&sdk, Some(&endpoint)),
            opts.settings.table.clone(),
        );
        let created = store
            .create_table_if_missing()
            .await
            .with_context(|| format!("creating table {} at {endpoint}", opts.settings.table))?;
        let arn = store.stream_arn().await?.with_context(|| {
            format!(
                "table {} has no stream: enable NEW_AND_OLD_IMAGES",
                opts.settings.table
            )
        })?;
        let start = if created {
            StartAt::TrimHorizon
        } else {
            StartAt::Latest
        };
        let reader = StreamReader::new(streams_client(&sdk, Some(&endpoint)), arn, start);

        let listener = tokio::net::TcpListener::bind((opts.host, opts.port))
            .await
            .with_context(|| {
                format!(
                    "binding {}:{} (is another ripple dev running? try --port)",
                    opts.host, opts.port
                )
            })?;
        let addr = listener.local_addr()?;
        let loopback = if addr.ip().is_unspecified() {
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), addr.port())
        } else {
            addr
        };

        let mut settings = opts.settings.clone();
        // As deployed (terraform: the stage's execute-api endpoint), the stage is part of the URL.
        let connections_endpoint = format!("http://{loopback}/{}", opts.stage);
        settings.connections_endpoint = Some(connections_endpoint.clone());
        let metrics = Metrics::default();
        let gateway = Gateway {
            connect: ConnectState::new(store.clone(), settings.clone()),
            ingest: IngestState {
                membership_reads: metrics.membership_reads(),
                ..IngestState::new(store.clone(), settings.clone())
            },
            registry: registry::Registry::default(),
            config: GatewayConfig {
                default_stage: opts.stage.clone(),
                idle_timeout: opts.idle_timeout,
                max_duration: opts.max_duration,
                connect_delay: opts.connect_delay,
                serial_frames: opts.serial_frames,
                frame_jitter: opts.frame_jitter,
                connections_rate: opts.connections_rate,
                ingest_concurrency: opts.ingest_concurrency,
                outbound_frames: opts.outbound_frames,
            },
            faults: Faults::new(opts.faults.clone()),
            metrics: metrics.clone(),
            account_limit: gateway::account_limiter(opts.connections_rate),
            frame_slots: gateway::frame_slots(opts.ingest_concurrency),
        };
        let faults = gateway.faults.clone();
        let registry = gateway.registry.clone();
        let new_instance = {
            let (store, sdk, settings) = (store.clone(), sdk.clone(), settings.clone());
            move || {
                Arc::new(FanoutState::new(
                    store.clone(),
                    Connections::new(sdk.clone(), settings.connections_endpoint.clone()),
                    &settings,
                ))
            }
        };
        let fanout = new_instance();
        let instances = Instances::new(new_instance);

        let (shutdown, watch_rx) = watch::channel(false);
        let mut tasks = Vec::new();
        let app = gateway::router(gateway)
            .merge(routes::router(routes::LocalInfo {
                dynamodb_endpoint: endpoint.clone(),
                table: opts.settings.table.clone(),
            }))
            .into_make_service_with_connect_info::<SocketAddr>();
        let mut server_stop = watch_rx.clone();
        tasks.push(tokio::spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = server_stop.wait_for(|stop| *stop).await;
                })
                .await;
            if let Err(err) = served {
                tracing::error!(error = %err, "the gateway stopped");
            }
        }));
        if let Some(every) = opts.sweep_every {
            let fanout = Arc::clone(&fanout);
            let config = opts.sweep.clone();
            let mut stop = watch_rx.clone();
            tasks.push(tokio::spawn(async move {
                loop {
                    tokio::select! {
                        _ = tokio::time::sleep(every) => {
                            fanout::sweep::sweep(&fanout, &config, ripple_common::now_ms()).await;
                        }
                        _ = stop.changed() => break,
                    }
                }
            }));
        }
        let mapping_metrics = metrics.clone();
        tasks.push(tokio::spawn(mapping::run(
            reader,
            opts.mapping.clone(),
            move |event, deadline: tokio::time::Instant| {
                let instances = instances.clone();
                let metrics = mapping_metrics.clone();
                async move {
                    let fanout = instances.take();
                    let (response, _, batch) =
                        fanout::lambda::process_measured(&fanout, event, Some(deadline.into_std()))
                            .await;
                    instances.give_back(fanout);
                    metrics.fanout(&batch);
                    Ok(response)
                }
            },
            watch_rx.clone(),
        )));
        if let Some(every) = opts.stats {
            let metrics = metrics.clone();
            let mut stop = watch_rx.clone();
            tasks.push(tokio::spawn(async move {
                loop {
                    tokio::select! {
                        _ = tokio::time::sleep(every) => eprintln!("ripple stats: {}", metrics.summary(registry.len())),
                        _ = stop.changed() => break,
                    }
                }
            }));
        }
        Ok(Self {
            addr: loopback,
            faults,
            dynamodb_endpoint: endpoint,
            connections_endpoint,
            table: opts.settings.table,
            metrics,
            store,
            shutdown,
            tasks,
            dynamodb,
        })
    }

    pub fn http_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}", self.addr)
    }

    /// The ready line.
    pub fn ready_line(&self) -> String {
        format!(
            "ripple dev ready: ws://{a}/?user=NAME&channel=NAME  demo http://{a}/demo  @connections {c}/@connections/{{id}}  metrics http://{a}/metrics  DynamoDB {d} (table {t})",
            a = self.addr,
            c = self.connections_endpoint,
            d = self.dynamodb_endpoint,
            t = self.table
        )
    }

    /// Stops the gateway, the stream trigger and DynamoDB Local (if it was started here).
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        for task in self.tasks.drain(..) {
            let abort = task.abort_handle();
            if tokio::time::timeout(Duration::from_secs(3), task)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
        if let Some(local) = self.dynamodb.take() {
            local.stop().await;
        }
    }
}
