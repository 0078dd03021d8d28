//! `ripple publish`: a chat message or a position into a channel from the command line, as the
//! reserved sender `server` (or `server:NAME`), through [`ripple_common::publish`].
//!
//! Where it writes:
//! - no `--table` and no `--dynamodb-endpoint`: the `ripple dev` at `--dev`
//!   (default `http://127.0.0.1:3001`, what `ripple dev` listens on by default), which tells its
//!   DynamoDB endpoint and table at [`crate::dev::routes::INFO_PATH`];
//! - `--dynamodb-endpoint URL` (and `--table`, default `ripple`): that DynamoDB with dummy local
//!   credentials (DynamoDB Local);
//! - `--table NAME` alone: a deployed stack's table, with the usual AWS settings (`--region`,
//!   `--profile`, or the environment and `~/.aws` as the AWS CLI reads them).

use anyhow::{Context, bail};
use clap::Args;
use http_body_util::{BodyExt, Empty};
use ripple_common::config::{Settings, dynamodb_client, local_sdk_config};
use ripple_common::protocol::SERVER_USER;
use ripple_common::publish::{Publication, Published, publish};
use ripple_common::store::Store;

use crate::dev::routes::{INFO_PATH, LocalInfo};

#[derive(Args, Debug)]
pub struct PublishArgs {
    /// The channel to publish to.
    #[arg(long)]
    pub channel: String,
    /// A chat message.
    #[arg(
        long,
        conflicts_with = "position",
        required_unless_present = "position"
    )]
    pub text: Option<String>,
    /// A position: `x,y` or `x,y,z`.
    #[arg(long, value_name = "X,Y[,Z]", allow_hyphen_values = true)]
    pub position: Option<String>,
    /// The position's `seq` (default: the current time in ms, which keeps increasing).
    #[arg(long, requires = "position")]
    pub seq: Option<u64>,
    /// The position's `data`, a JSON object.
    #[arg(long, requires = "position")]
    pub data: Option<String>,
    /// The sender: `server` or `server:NAME` (names no client can connect as).
    #[arg(long, default_value = SERVER_USER)]
    pub from: String,
    /// The running `ripple dev` to publish through (when neither --table nor
    /// --dynamodb-endpoint is given).
    #[arg(long, default_value = "http://127.0.0.1:3001")]
    pub dev: String,
    /// DynamoDB endpoint (e.g. DynamoDB Local); dummy local credentials are used.
    #[arg(long)]
    pub dynamodb_endpoint: Option<String>,
    /// Table name: alone, a deployed stack's table (AWS credentials and region as the AWS CLI
    /// finds them).
    #[arg(long)]
    pub table: Option<String>,
    /// AWS region (deployed stack).
    #[arg(long)]
    pub region: Option<String>,
    /// AWS profile (deployed stack).
    #[arg(long)]
    pub profile: Option<String>,
}

/// Publishes what `args` says; prints what was written.
pub async fn run(args: PublishArgs) -> anyhow::Result<()> {
    let what = publication(&args)?;
    let store = store(&args).await?;
    let settings = Settings::for_table(store.table());
    let published = publish(&store, &settings, &args.from, &args.channel, what)
        .await
        .with_context(|| format!("publishing to {:?}", args.channel))?;
    match published {
        Published::Message { id, ts } => println!(
            "published message {id} to {} as {} (ts {ts})",
            args.channel, args.from
        ),
        Published::Position { seq, ts, written } if written => println!(
            "published position seq {seq} to {} as {} (ts {ts})",
            args.channel, args.from
        ),
        Published::Position { seq, .. } => bail!(
            "position seq {seq} not written: {} already has a position with a seq at least as high in {}",
            args.from,
            args.channel
        ),
    }
    Ok(())
}

fn publication(args: &PublishArgs) -> anyhow::Result<Publication> {
    if let Some(text) = &args.text {
        return Ok(Publication::Message { text: text.clone() });
    }
    let Some(position) = &args.position else {
        bail!("give --text or --position");
    };
    let numbers = position
        .split(',')
        .map(|n| n.trim().parse::<f64>())
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("--position {position:?}: expected x,y or x,y,z numbers"))?;
    let (x, y, z) = match numbers[..] {
        [x, y] => (x, y, None),
        [x, y, z] => (x, y, Some(z)),
        _ => bail!("--position {position:?}: expected x,y or x,y,z"),
    };
    let data = match &args.data {
        None => None,
        Some(text) => match serde_json::from_str(text) {
            Ok(serde_json::Value::Object(map)) => Some(map),
            Ok(_) => bail!("--data must be a JSON object"),
            Err(e) => bail!("--data is not JSON: {e}"),
        },
    };
    Ok(Publication::Position {
        x,
        y,
        z,
        seq: args.seq,
        data,
    })
}

async fn store(args: &PublishArgs) -> anyhow::Result<Store> {
    if let Some(endpoint) = &args.dynamodb_endpoint {
        let table = args.table.clone().unwrap_or_else(|| "ripple".into());
        return Ok(Store::new(
            dynamodb_client(&local_sdk_config(), Some(endpoint)),
            table,
        ));
    }
    if let Some(table) = &args.table {
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
        if let Some(region) = &args.region {
            loader = loader.region(aws_config::Region::new(region.clone()));
        }
        if let Some(profile) = &args.profile {
            loader = loader.profile_name(profile);
        }
        let sdk = loader.load().await;
        return Ok(Store::new(dynamodb_client(&sdk, None), table.clone()));
    }
    let info = dev_info(&args.dev).await?;
    Ok(Store::new(
        dynamodb_client(&local_sdk_config(), Some(&info.dynamodb_endpoint)),
        info.table,
    ))
}

/// Asks a running `ripple dev` where its DynamoDB and table are.
pub async fn dev_info(dev: &str) -> anyhow::Result<LocalInfo> {
    let url = format!("{}{INFO_PATH}", dev.trim_end_matches('/'));
    let uri: http::Uri = url
        .parse()
        .with_context(|| format!("--dev {dev:?} is not a URL"))?;
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Empty<bytes::Bytes>>();
    let no_dev = || {
        format!(
            "no ripple dev answered at {dev}: start one (`bash scripts/dev.sh`), or pass --dev, \
             --dynamodb-endpoint or --table"
        )
    };
    let response = tokio::time::timeout(std::time::Duration::from_secs(5), client.get(uri))
        .await
        .with_context(no_dev)?
        .with_context(no_dev)?;
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .with_context(|| format!("reading {url}"))?
        .to_bytes();
    if !status.is_success() {
        bail!(
            "{url} answered {status}: is it a ripple dev? ({})",
            no_dev()
        );
    }
    serde_json::from_slice(&body).with_context(|| format!("{url} did not answer ripple dev's info"))
}
