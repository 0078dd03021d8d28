//! What each Lambda function needs from its deployment: the environment variables its code reads
//! and the IAM actions its code calls. [`contract`] writes these lists (with the metric names of
//! `emf::CATALOG` and the stream filter's kinds) as `terraform/modules/ripple/contract.json`, which
//! the module reads for its stream filter kinds; `tests/tests/terraform.rs` keeps that file
//! equal to this one and checks the environment and the dashboard against it.

use crate::items::Kind;

/// One deployed function.
#[derive(Debug, Clone, Copy)]
pub struct FunctionSpec {
    /// Cargo package name = Lambda name suffix = `target/lambda/{package}/bootstrap.zip`.
    pub package: &'static str,
    /// Environment variables the function fails to start without.
    pub env_required: &'static [&'static str],
    /// Environment variables the function reads when present.
    pub env_optional: &'static [&'static str],
    /// DynamoDB actions on the table (and its indexes) that the code calls.
    pub table_actions: &'static [&'static str],
    /// DynamoDB Streams actions on the table's stream (the event source mapping polls for fanout).
    pub stream_actions: &'static [&'static str],
    /// Whether the function posts to / deletes connections (`execute-api:ManageConnections`).
    pub manages_connections: bool,
    /// Whether the function reads the SSM SecureString parameter named by
    /// `RIPPLE_JWT_SECRET_PARAMETER` (`ssm:GetParameter` on it, `kms:Decrypt` of its key).
    pub reads_secret_parameter: bool,
}

pub const ENV_TABLE: &str = "RIPPLE_TABLE";
pub const ENV_CONNECTION_TTL_SECS: &str = "RIPPLE_CONNECTION_TTL_SECS";
/// `ripple dev` only: the HS256 secret itself. A deployed function refuses to start with it set.
pub const ENV_JWT_SECRET: &str = "RIPPLE_JWT_SECRET";
/// The name of the SSM SecureString parameter holding the HS256 secret (read at cold start).
pub const ENV_JWT_SECRET_PARAMETER: &str = "RIPPLE_JWT_SECRET_PARAMETER";
pub const ENV_JWKS_URL: &str = "RIPPLE_JWKS_URL";
pub const ENV_JWT_ISSUER: &str = "RIPPLE_JWT_ISSUER";
pub const ENV_JWT_AUDIENCE: &str = "RIPPLE_JWT_AUDIENCE";
/// `true`: without a token, trust the client's `?user=` (development only).
pub const ENV_ALLOW_ANONYMOUS: &str = "RIPPLE_ALLOW_ANONYMOUS";
pub const ENV_POSITION_TTL_SECS: &str = "RIPPLE_POSITION_TTL_SECS";
pub const ENV_MESSAGE_TTL_SECS: &str = "RIPPLE_MESSAGE_TTL_SECS";
pub const ENV_CONNECTIONS_ENDPOINT: &str = "RIPPLE_CONNECTIONS_ENDPOINT";
pub const ENV_MAX_IN_FLIGHT: &str = "RIPPLE_MAX_IN_FLIGHT";
pub const ENV_POSTS_PER_SECOND: &str = "RIPPLE_POSTS_PER_SECOND";
pub const ENV_MEMBER_CACHE_MS: &str = "RIPPLE_MEMBER_CACHE_MS";
pub const ENV_RESUME_WINDOW_SECS: &str = "RIPPLE_RESUME_WINDOW_SECS";
pub const ENV_POSITION_RATE: &str = "RIPPLE_POSITION_RATE";
pub const ENV_MESSAGE_RATE: &str = "RIPPLE_MESSAGE_RATE";
/// Connect and ingest: members one channel may have.
pub const ENV_MAX_MEMBERS_PER_CHANNEL: &str = "RIPPLE_MAX_MEMBERS_PER_CHANNEL";
pub const ENV_RUST_LOG: &str = "RUST_LOG";

pub const CONNECT: FunctionSpec = FunctionSpec {
    package: "connect",
    env_required: &[
        ENV_TABLE,
        ENV_CONNECTION_TTL_SECS,
        ENV_RESUME_WINDOW_SECS,
        ENV_MAX_MEMBERS_PER_CHANNEL,
    ],
    env_optional: &[
        ENV_JWT_SECRET_PARAMETER,
        ENV_JWKS_URL,
        ENV_JWT_ISSUER,
        ENV_JWT_AUDIENCE,
        ENV_ALLOW_ANONYMOUS,
        ENV_RUST_LOG,
    ],
    table_actions: &[
        "dynamodb:PutItem",
        "dynamodb:DeleteItem",
        "dynamodb:Query",
        // `$disconnect` marks the connection closing before it removes it (Store::delete_connection).
        "dynamodb:UpdateItem",
        "dynamodb:BatchWriteItem",
    ],
    stream_actions: &[],
    manages_connections: false,
    reads_secret_parameter: true,
};

pub const INGEST: FunctionSpec = FunctionSpec {
    package: "ingest",
    env_required: &[
        ENV_TABLE,
        ENV_POSITION_TTL_SECS,
        ENV_MESSAGE_TTL_SECS,
        ENV_POSITION_RATE,
        ENV_MESSAGE_RATE,
        ENV_MAX_MEMBERS_PER_CHANNEL,
    ],
    env_optional: &[ENV_RUST_LOG],
    table_actions: &[
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:DeleteItem",
        // A join counts the connection's memberships (its own partition).
        "dynamodb:Query",
        // A leave takes back the publisher mark of its position.
        "dynamodb:UpdateItem",
        // A first position proves its membership in a transaction (PutItem + ConditionCheckItem).
        "dynamodb:ConditionCheckItem",
    ],
    stream_actions: &[],
    manages_connections: false,
    reads_secret_parameter: false,
};

pub const FANOUT: FunctionSpec = FunctionSpec {
    package: "fanout",
    env_required: &[
        ENV_TABLE,
        ENV_CONNECTIONS_ENDPOINT,
        ENV_MAX_IN_FLIGHT,
        ENV_POSTS_PER_SECOND,
        ENV_MEMBER_CACHE_MS,
    ],
    env_optional: &[ENV_RUST_LOG],
    table_actions: &[
        "dynamodb:Query",
        // The `welcomed` mark and roster entries (a transaction: PutItem + ConditionCheckItem).
        "dynamodb:GetItem",
        "dynamodb:UpdateItem",
        "dynamodb:PutItem",
        "dynamodb:ConditionCheckItem",
        "dynamodb:BatchGetItem",
        "dynamodb:BatchWriteItem",
    ],
    stream_actions: &[
        "dynamodb:DescribeStream",
        "dynamodb:GetRecords",
        "dynamodb:GetShardIterator",
        "dynamodb:ListStreams",
    ],
    manages_connections: true,
    reads_secret_parameter: false,
};

/// Every deployed function.
pub const FUNCTIONS: [FunctionSpec; 3] = [CONNECT, INGEST, FANOUT];

/// Variables the code reads only to refuse them (a secret must never come from the environment).
pub const ENV_REFUSED: &[&str] = &[ENV_JWT_SECRET];

/// Whether the code may read `name`: some function declares it, or it is refused on sight.
pub fn is_declared(name: &str) -> bool {
    ENV_REFUSED.contains(&name)
        || FUNCTIONS
            .iter()
            .any(|f| f.env_required.contains(&name) || f.env_optional.contains(&name))
}

/// The fanout event source mapping (DynamoDB stream → fanout) as `terraform/` deploys it: these
/// are the defaults of the Terraform variables (a test compares them) and of `ripple dev`'s
/// emulated mapping, so what runs locally is what AWS runs.
#[derive(Debug, Clone, Copy)]
pub struct StreamMapping {
    pub batch_size: usize,
    pub maximum_batching_window_secs: u64,
    /// 1: Lambda then keeps the order of every shard, so one sender's chat messages (separate
    /// items in one partition) reach members in the order sent. Above 1 Lambda keeps order per
    /// item only (`docs/deploy.md`, "Ordering").
    pub parallelization_factor: usize,
    pub bisect_batch_on_function_error: bool,
    /// -1: until the record expires.
    pub maximum_retry_attempts: i64,
    /// -1: no limit.
    pub maximum_record_age_secs: i64,
    /// The fanout function's timeout.
    pub function_timeout_secs: u64,
}

pub const FANOUT_MAPPING: StreamMapping = StreamMapping {
    batch_size: 100,
    maximum_batching_window_secs: 0,
    parallelization_factor: 1,
    bisect_batch_on_function_error: true,
    maximum_retry_attempts: 5,
    maximum_record_age_secs: 600,
    function_timeout_secs: 60,
};

/// Shards `ripple dev` splits its stream into by default: a new on-demand table already has
/// several partitions, hence several stream shards (DynamoDB Streams developer guide).
pub const LOCAL_STREAM_SHARDS: usize = 4;

/// How often Lambda polls each shard: "Lambda polls shards in your DynamoDB stream for records
/// at a base rate of 4 times per second" (Lambda developer guide, "Using Lambda with DynamoDB").
pub const STREAM_POLL_INTERVAL_MS: u64 = 250;

/// Lambda's own log level for the three functions (`logging_config.system_log_level`, JSON log
/// format). At `WARN` Lambda sends no `START`/`END`/`REPORT` lines, which are `INFO` events ("By
/// default, Lambda sets the system log level to INFO. With this setting, Lambda automatically
/// sends "start" and "report" log messages to CloudWatch": Lambda developer guide, "Log-level
/// filtering"). At one ingest invocation per client frame they were the largest log item of the
/// bill (~0.26 KB per invocation); `ripple bench e2e` bills them only at `INFO` or `DEBUG`.
pub const LAMBDA_SYSTEM_LOG_LEVEL: &str = "WARN";

/// The fanout mapping's filter criteria (`terraform/` deploys them, `ripple dev` applies them):
/// `INSERT`/`MODIFY` records whose `NewImage.kind` is one of these invoke fanout...
pub const FANOUT_UPSERT_KINDS: &[&str] = &[
    Kind::Connection.as_str(),
    Kind::Member.as_str(),
    Kind::Roster.as_str(),
    Kind::Position.as_str(),
    Kind::Message.as_str(),
];
/// ...and `REMOVE` records whose `OldImage.kind` is one of these (a roster entry removed is a
/// `leave`). Everything else is dropped by Lambda before any invocation.
pub const FANOUT_REMOVE_KINDS: &[&str] = &[Kind::Roster.as_str()];

/// The deployment contract as `terraform/modules/ripple/contract.json` holds it: per function the
/// environment variables, IAM actions and metric names the code needs, and the stream filter's
/// item kinds. Generated from this file and `emf::CATALOG`; never edited by hand.
pub fn contract() -> serde_json::Value {
    let functions: serde_json::Map<String, serde_json::Value> = FUNCTIONS
        .iter()
        .map(|f| {
            let metrics: Vec<&str> = crate::emf::CATALOG
                .iter()
                .filter(|m| m.function == f.package)
                .map(|m| m.name)
                .collect();
            let spec = serde_json::json!({
                "env_required": f.env_required,
                "env_optional": f.env_optional,
                "table_actions": f.table_actions,
                "stream_actions": f.stream_actions,
                "manages_connections": f.manages_connections,
                "reads_secret_parameter": f.reads_secret_parameter,
                "metrics": metrics,
            });
            (f.package.to_owned(), spec)
        })
        .collect();
    serde_json::json!({
        "_generated": "from common/src/deploy.rs and common/src/emf.rs; rewrite with RIPPLE_WRITE_CONTRACT=1 cargo nextest run -p ripple-tests --test terraform",
        "functions": functions,
        "fanout_upsert_kinds": FANOUT_UPSERT_KINDS,
        "fanout_remove_kinds": FANOUT_REMOVE_KINDS,
        "metrics_namespace": crate::emf::NAMESPACE,
    })
}
