//! Ripple's shared core, used by the three Lambda functions (`connect`, `ingest`, `fanout`), by
//! the `ripple` command and by the tests.
//!
//! | module | what it holds |
//! |---|---|
//! | [`apigw`] | the response `connect` and `ingest` give API Gateway |
//! | [`auth`] | HS256 JWT verification for `$connect` |
//! | [`keys`] | table, index and attribute names; key builders for every item kind |
//! | [`items`] | one serde type per DynamoDB item, used with the SDK and to decode stream images |
//! | [`protocol`] | the wire protocol: client frames (parsed and validated) and server frames |
//! | [`publish`] | server-side publish: a backend writes a message or position as a reserved sender |
//! | [`store`] | the DynamoDB store: every read and write the functions make; [`store::admin`] creates the table for `ripple dev` and tests |
//! | [`stream_record`] | a DynamoDB stream record in Lambda's JSON shape (ripple dev, benchmarks, tests) |
//! | [`connections`] | the `@connections` client: posts, classified outcomes, one client per endpoint |
//! | [`config`] | configuration read from the environment, failing at start-up with what to set |
//! | [`deploy`] | what each function needs from its deployment (env vars, IAM actions) |
//! | [`error`] | the error types |
//! | [`telemetry`] | tracing set-up shared by the binaries |
//! | [`emf`] | CloudWatch Embedded Metric Format lines: the metrics each function prints, summed per instance |
//! | [`warm`] | cold starts: opening DynamoDB and `@connections` during Lambda's init |

pub mod apigw;
pub mod auth;
pub mod config;
pub mod connections;
pub mod deploy;
pub mod emf;
pub mod error;
pub mod items;
pub mod keys;
pub mod protocol;
pub mod publish;
pub mod store;
pub mod stream_record;
pub mod telemetry;
pub mod warm;

/// Milliseconds since the Unix epoch, the clock every item's timestamps use.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
