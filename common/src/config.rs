//! Configuration from the environment. Every function reads its settings once at start-up;
//! a missing or malformed value stops it with a message naming the variable to set.

use std::time::Duration;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::config::{Credentials, SharedCredentialsProvider};

use crate::deploy::*;
use crate::error::ConfigError;

/// Connection TTL: API Gateway closes every connection after 2 h; 10 min of slack.
pub const DEFAULT_CONNECTION_TTL_SECS: u64 = 2 * 3600 + 10 * 60;
/// A position outlives the 10-minute idle timeout of its connection.
pub const DEFAULT_POSITION_TTL_SECS: u64 = 15 * 60;
/// Chat history is kept a day.
pub const DEFAULT_MESSAGE_TTL_SECS: u64 = 24 * 3600;
/// Posts in flight at once per fanout instance.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 64;
/// Posts per second per fanout instance (the account's budget is 10,000/s for the whole fleet).
pub const DEFAULT_POSTS_PER_SECOND: u32 = 2_000;

/// Positions a connection may publish per second (bursts up to the same number).
pub const DEFAULT_POSITION_RATE: u32 = 30;
/// Chat messages a connection may publish per second (bursts up to twice that).
pub const DEFAULT_MESSAGE_RATE: u32 = 5;

/// Members one channel may have (a `join` beyond it is refused `channel_full`).
pub const DEFAULT_MAX_MEMBERS_PER_CHANNEL: u32 = 1_000;

/// How long after a disconnect a reconnect with `?resume=1` gets its channels back.
pub const DEFAULT_RESUME_WINDOW_SECS: u64 = 120;

/// Settings of all three functions; each reads only what it uses. The one definition of them:
/// a deployed function reads them from its environment ([`Settings::from_env_for`], under the
/// names `deploy.rs` declares), `ripple dev` takes them as flags (this struct flattened into its
/// arguments; the defaults are [`Settings::for_table`]'s constants).
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct Settings {
    /// Table name (created with stream, TTL and index when missing).
    #[arg(long, default_value = "ripple")]
    pub table: String,
    /// Seconds connection and membership items live.
    #[arg(long, default_value_t = DEFAULT_CONNECTION_TTL_SECS, value_parser = clap::value_parser!(u64).range(1..))]
    pub connection_ttl_secs: u64,
    /// Seconds a position lives after its last write.
    #[arg(long, default_value_t = DEFAULT_POSITION_TTL_SECS, value_parser = clap::value_parser!(u64).range(1..))]
    pub position_ttl_secs: u64,
    /// Seconds a chat message lives.
    #[arg(long, default_value_t = DEFAULT_MESSAGE_TTL_SECS, value_parser = clap::value_parser!(u64).range(1..))]
    pub message_ttl_secs: u64,
    /// `@connections` base URL for every post, instead of the connection's domain and stage.
    #[arg(skip)]
    pub connections_endpoint: Option<String>,
    /// Fanout: posts in flight at once.
    #[arg(long, default_value_t = DEFAULT_MAX_IN_FLIGHT)]
    pub max_in_flight: usize,
    /// Fanout: posts per second.
    #[arg(long, default_value_t = DEFAULT_POSTS_PER_SECOND)]
    pub posts_per_second: u32,
    /// Require an HS256 JWT at connect, signed with this secret (`?token=` or
    /// Sec-WebSocket-Protocol). `ripple dev` only: on Lambda it is read from SSM at cold start.
    #[arg(long, env = ENV_JWT_SECRET, hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// The SSM SecureString parameter holding the HS256 secret (Lambda).
    #[arg(skip)]
    pub jwt_secret_parameter: Option<String>,
    /// Require an RS256 / ES256 JWT at connect, verified with the keys of this JSON Web Key Set
    /// (chosen by `kid`), e.g. https://cognito-idp.<region>.amazonaws.com/<pool>/.well-known/jwks.json
    #[arg(long, env = ENV_JWKS_URL)]
    pub jwks_url: Option<String>,
    /// Require this `iss` in tokens.
    #[arg(long, env = ENV_JWT_ISSUER)]
    pub jwt_issuer: Option<String>,
    /// Require this `aud` in tokens.
    #[arg(long, env = ENV_JWT_AUDIENCE)]
    pub jwt_audience: Option<String>,
    /// Without a configured secret or key set, trust `?user=` (development). `ripple dev` and
    /// tests default to true; a deployed function to false.
    #[arg(skip = true)]
    pub allow_anonymous: bool,
    /// Positions one connection may publish per second.
    #[arg(long, default_value_t = DEFAULT_POSITION_RATE)]
    pub position_rate: u32,
    /// Chat messages one connection may publish per second.
    #[arg(long, default_value_t = DEFAULT_MESSAGE_RATE)]
    pub message_rate: u32,
    /// Members one channel may have: a `join` (or a channel at connect) beyond it is refused
    /// `channel_full`. Counted from the channel's roster, so joins in flight can pass it.
    #[arg(long, default_value_t = DEFAULT_MAX_MEMBERS_PER_CHANNEL, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_members_per_channel: u32,
    /// Seconds a closed connection's channels are kept for `?resume=1`.
    #[arg(long, default_value_t = DEFAULT_RESUME_WINDOW_SECS, value_parser = clap::value_parser!(u64).range(1..))]
    pub resume_window_secs: u64,
    /// Fanout's member cache, in ms (0: off; at most 1,000).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=1000))]
    pub member_cache_ms: u64,
}

impl Settings {
    /// Defaults for a table name (used by tests and `ripple dev`).
    pub fn for_table(table: impl Into<String>) -> Self {
        Self {
            table: table.into(),
            connection_ttl_secs: DEFAULT_CONNECTION_TTL_SECS,
            position_ttl_secs: DEFAULT_POSITION_TTL_SECS,
            message_ttl_secs: DEFAULT_MESSAGE_TTL_SECS,
            connections_endpoint: None,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            posts_per_second: DEFAULT_POSTS_PER_SECOND,
            jwt_secret: None,
            jwt_secret_parameter: None,
            jwks_url: None,
            jwt_issuer: None,
            jwt_audience: None,
            allow_anonymous: true,
            position_rate: DEFAULT_POSITION_RATE,
            message_rate: DEFAULT_MESSAGE_RATE,
            max_members_per_channel: DEFAULT_MAX_MEMBERS_PER_CHANNEL,
            resume_window_secs: DEFAULT_RESUME_WINDOW_SECS,
            member_cache_ms: 0,
        }
    }

    /// These settings as the environment a deployed function reads them from (the inverse of
    /// [`Settings::from_lookup`]; the JWT secret is never rendered), e.g. to start a function
    /// binary with Terraform's defaults ([`Settings::for_table`]).
    pub fn to_env(&self) -> Vec<(&'static str, String)> {
        let mut env = vec![
            (ENV_TABLE, self.table.clone()),
            (
                ENV_CONNECTION_TTL_SECS,
                self.connection_ttl_secs.to_string(),
            ),
            (ENV_POSITION_TTL_SECS, self.position_ttl_secs.to_string()),
            (ENV_MESSAGE_TTL_SECS, self.message_ttl_secs.to_string()),
            (ENV_MAX_IN_FLIGHT, self.max_in_flight.to_string()),
            (ENV_POSTS_PER_SECOND, self.posts_per_second.to_string()),
            (ENV_MEMBER_CACHE_MS, self.member_cache_ms.to_string()),
            (ENV_POSITION_RATE, self.position_rate.to_string()),
            (ENV_MESSAGE_RATE, self.message_rate.to_string()),
            (
                ENV_MAX_MEMBERS_PER_CHANNEL,
                self.max_members_per_channel.to_string(),
            ),
            (ENV_RESUME_WINDOW_SECS, self.resume_window_secs.to_string()),
            (ENV_ALLOW_ANONYMOUS, self.allow_anonymous.to_string()),
        ];
        let optional = [
            (ENV_CONNECTIONS_ENDPOINT, &self.connections_endpoint),
            (ENV_JWT_SECRET_PARAMETER, &self.jwt_secret_parameter),
            (ENV_JWKS_URL, &self.jwks_url),
            (ENV_JWT_ISSUER, &self.jwt_issuer),
            (ENV_JWT_AUDIENCE, &self.jwt_audience),
        ];
        env.extend(
            optional
                .into_iter()
                .filter_map(|(k, v)| Some((k, v.clone()?))),
        );
        env
    }

    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads a deployed function's settings: every variable Terraform always sets for it
    /// (`spec.env_required`) must be there, so a renamed variable stops the function at start-up
    /// instead of silently running on a default.
    pub fn from_env_for(spec: &FunctionSpec) -> Result<Self, ConfigError> {
        Self::from_lookup_for(spec, |name| std::env::var(name).ok())
    }

    /// [`Settings::from_env_for`] through `lookup`.
    pub fn from_lookup_for(
        spec: &FunctionSpec,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        if let Some(name) = spec
            .env_required
            .iter()
            .find(|name| lookup(name).is_none_or(|v| v.trim().is_empty()))
        {
            return Err(ConfigError::Missing {
                name,
                hint: "Terraform sets it for this function (terraform/modules/ripple/lambda.tf); set it as Terraform does",
            });
        }
        Self::from_lookup(lookup)
    }

    /// Reads settings through `lookup` (the environment, or a map in tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        // Only variables `deploy` declares may be read: Terraform sets nothing else.
        let undeclared = std::cell::Cell::new(None);
        let get = |name: &'static str| {
            if !is_declared(name) {
                undeclared.set(Some(name));
            }
            lookup(name).filter(|v| !v.trim().is_empty())
        };
        let table = get(ENV_TABLE).ok_or(ConfigError::Missing {
            name: ENV_TABLE,
            hint: "set it to the DynamoDB table name (terraform output `table_name`)",
        })?;
        let mut s = Self::for_table(table);
        let number =
            |name: &'static str, hint: &'static str| -> Result<Option<u64>, ConfigError> {
                get(name)
                    .map(|v| {
                        v.trim().parse::<u64>().ok().filter(|n| *n > 0).ok_or(
                            ConfigError::Invalid {
                                name,
                                value: v,
                                hint,
                            },
                        )
                    })
                    .transpose()
            };
        const SECS: &str = "a positive whole number of seconds";
        if let Some(n) = number(ENV_CONNECTION_TTL_SECS, SECS)? {
            s.connection_ttl_secs = n;
        }
        if let Some(n) = number(ENV_POSITION_TTL_SECS, SECS)? {
            s.position_ttl_secs = n;
        }
        if let Some(n) = number(ENV_MESSAGE_TTL_SECS, SECS)? {
            s.message_ttl_secs = n;
        }
        if let Some(n) = number(ENV_MAX_IN_FLIGHT, "a positive number of concurrent posts")? {
            s.max_in_flight = usize::try_from(n).unwrap_or(usize::MAX);
        }
        if let Some(n) = number(
            ENV_POSTS_PER_SECOND,
            "a positive number of posts per second",
        )? {
            s.posts_per_second = u32::try_from(n).unwrap_or(u32::MAX);
        }
        if let Some(n) = number(ENV_RESUME_WINDOW_SECS, SECS)? {
            s.resume_window_secs = n;
        }
        if let Some(v) = get(ENV_MEMBER_CACHE_MS) {
            s.member_cache_ms = v
                .trim()
                .parse::<u64>()
                .ok()
                .filter(|ms| *ms <= 1_000)
                .ok_or(ConfigError::Invalid {
                    name: ENV_MEMBER_CACHE_MS,
                    value: v,
                    hint: "milliseconds from 0 (off) to 1000",
                })?;
        }
        const RATE: &str = "a positive number per second per connection";
        if let Some(n) = number(ENV_POSITION_RATE, RATE)? {
            s.position_rate = u32::try_from(n).unwrap_or(u32::MAX);
        }
        if let Some(n) = number(ENV_MESSAGE_RATE, RATE)? {
            s.message_rate = u32::try_from(n).unwrap_or(u32::MAX);
        }
        if let Some(n) = number(
            ENV_MAX_MEMBERS_PER_CHANNEL,
            "a positive number of members per channel",
        )? {
            s.max_members_per_channel = u32::try_from(n).unwrap_or(u32::MAX);
        }
        if let Some(url) = get(ENV_CONNECTIONS_ENDPOINT) {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(ConfigError::Invalid {
                    name: ENV_CONNECTIONS_ENDPOINT,
                    value: url,
                    hint: "an http:// or https:// URL such as https://abc.execute-api.us-east-1.amazonaws.com/prod",
                });
            }
            s.connections_endpoint = Some(url.trim_end_matches('/').to_owned());
        }
        if get(ENV_JWT_SECRET).is_some() {
            return Err(ConfigError::Invalid {
                name: ENV_JWT_SECRET,
                value: "(hidden)".to_owned(),
                hint: "a deployed function never takes the secret from its environment: store it as an SSM SecureString parameter and set RIPPLE_JWT_SECRET_PARAMETER to its name",
            });
        }
        s.jwt_secret_parameter = get(ENV_JWT_SECRET_PARAMETER);
        if let Some(url) = get(ENV_JWKS_URL) {
            if !(url.starts_with("https://") || is_loopback_http(&url)) {
                return Err(ConfigError::Invalid {
                    name: ENV_JWKS_URL,
                    value: url,
                    hint: "an https:// URL of a JSON Web Key Set, such as https://cognito-idp.us-east-1.amazonaws.com/<pool id>/.well-known/jwks.json",
                });
            }
            s.jwks_url = Some(url);
        }
        s.jwt_issuer = get(ENV_JWT_ISSUER);
        s.jwt_audience = get(ENV_JWT_AUDIENCE);
        s.allow_anonymous = match get(ENV_ALLOW_ANONYMOUS) {
            None => false,
            Some(v) => match v.trim() {
                "true" | "1" => true,
                "false" | "0" => false,
                _ => {
                    return Err(ConfigError::Invalid {
                        name: ENV_ALLOW_ANONYMOUS,
                        value: v,
                        hint: "true or false",
                    });
                }
            },
        };
        match undeclared.get() {
            Some(name) => Err(ConfigError::Undeclared { name }),
            None => Ok(s),
        }
    }

    /// How `$connect` checks tokens.
    pub fn auth_config(&self) -> crate::auth::AuthConfig {
        crate::auth::AuthConfig {
            hs256_secret: self.jwt_secret.as_ref().map(|s| s.as_bytes().to_vec()),
            jwks_url: self.jwks_url.clone(),
            issuer: self.jwt_issuer.clone(),
            audience: self.jwt_audience.clone(),
        }
    }

    /// For `connect`: fails unless tokens can be checked (a secret parameter or a key set) or
    /// anonymous connections were explicitly allowed.
    pub fn require_auth_or_anonymous(&self) -> Result<(), ConfigError> {
        if self.jwt_secret.is_some()
            || self.jwt_secret_parameter.is_some()
            || self.jwks_url.is_some()
            || self.allow_anonymous
        {
            return Ok(());
        }
        Err(ConfigError::Missing {
            name: ENV_JWT_SECRET_PARAMETER,
            hint: "set it (HS256 secret in SSM) or RIPPLE_JWKS_URL (RS256/ES256 keys) to require a token at $connect; RIPPLE_ALLOW_ANONYMOUS=true trusts ?user= instead (development only)",
        })
    }
}

/// `http://` on a loopback host (a JWKS served by a test or a local issuer).
fn is_loopback_http(url: &str) -> bool {
    url.strip_prefix("http://")
        .map(|rest| rest.split(['/', '?']).next().unwrap_or_default())
        .map(|host| host.rsplit_once(':').map_or(host, |(h, _)| h))
        .is_some_and(|h| h == "localhost" || h.starts_with("127.") || h == "[::1]")
}

/// The SDK configuration of a deployed function (region and credentials from Lambda).
pub async fn aws_sdk_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .timeout_config(
            aws_config::timeout::TimeoutConfig::builder()
                .operation_attempt_timeout(Duration::from_secs(5))
                .connect_timeout(Duration::from_secs(2))
                .build(),
        )
        .load()
        .await
}

/// An SDK configuration for loopback services (DynamoDB Local, `ripple dev`): fixed region and
/// dummy credentials, nothing read from the environment, nothing sent beyond the given endpoints.
pub fn local_sdk_config() -> SdkConfig {
    SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
            "local",
            "local",
            None,
            None,
            "ripple-local",
        )))
        .timeout_config(
            aws_config::timeout::TimeoutConfig::builder()
                .operation_attempt_timeout(Duration::from_secs(10))
                .connect_timeout(Duration::from_secs(2))
                .build(),
        )
        .build()
}

/// A DynamoDB client, at `endpoint` when given (DynamoDB Local), else where the config points.
pub fn dynamodb_client(sdk: &SdkConfig, endpoint: Option<&str>) -> aws_sdk_dynamodb::Client {
    let mut builder = aws_sdk_dynamodb::config::Builder::from(sdk);
    if let Some(url) = endpoint {
        builder = builder.endpoint_url(url);
    }
    aws_sdk_dynamodb::Client::from_conf(builder.build())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn settings_rendered_as_an_environment_read_back_the_same() {
        // GIVEN settings off their defaults, with an endpoint and a key set
        let mut s = Settings::for_table("t");
        (s.max_in_flight, s.member_cache_ms, s.allow_anonymous) = (8, 250, false);
        s.connections_endpoint = Some("http://127.0.0.1:9/prod".into());
        s.jwks_url = Some("https://issuer.example/jwks.json".into());
        // WHEN rendered as environment variables and read back
        let env: HashMap<&str, String> = s.to_env().into_iter().collect();
        // THEN the function reads the same settings, and every required variable is there
        let read = Settings::from_lookup_for(&FANOUT, |k| env.get(k).cloned()).unwrap();
        assert_eq!(read, s);
    }

    #[test]
    fn a_deployed_function_refuses_to_start_without_a_variable_terraform_always_sets() {
        // GIVEN ingest's environment without RIPPLE_POSITION_RATE (say, renamed in Terraform)
        let env = lookup(&[
            ("RIPPLE_TABLE", "t"),
            ("RIPPLE_POSITION_TTL_SECS", "900"),
            ("RIPPLE_MESSAGE_TTL_SECS", "86400"),
            ("RIPPLE_MESSAGE_RATE", "5"),
        ]);
        // WHEN ingest reads its settings
        let err = Settings::from_lookup_for(&crate::deploy::INGEST, env).unwrap_err();
        // THEN it stops, naming the variable
        assert!(
            err.to_string()
                .starts_with("RIPPLE_POSITION_RATE is not set"),
            "{err}"
        );
    }

    #[test]
    fn a_deployed_function_runs_on_the_values_terraform_sets_not_on_defaults() {
        // GIVEN fanout's and ingest's variables, none at its default
        let env = lookup(&[
            ("RIPPLE_TABLE", "t"),
            ("RIPPLE_CONNECTIONS_ENDPOINT", "https://abc.example/prod"),
            ("RIPPLE_MAX_IN_FLIGHT", "7"),
            ("RIPPLE_POSTS_PER_SECOND", "77"),
            ("RIPPLE_MEMBER_CACHE_MS", "500"),
            ("RIPPLE_POSITION_TTL_SECS", "11"),
            ("RIPPLE_MESSAGE_TTL_SECS", "12"),
            ("RIPPLE_POSITION_RATE", "13"),
            ("RIPPLE_MESSAGE_RATE", "14"),
            ("RIPPLE_MAX_MEMBERS_PER_CHANNEL", "15"),
        ]);
        // WHEN read as each function reads them
        let fanout = Settings::from_lookup_for(&crate::deploy::FANOUT, &env).unwrap();
        let ingest = Settings::from_lookup_for(&crate::deploy::INGEST, &env).unwrap();
        // THEN every value is the one set (a variable read under another name would be a
        // default here, or an `Undeclared` error)
        assert_eq!(
            (
                fanout.max_in_flight,
                fanout.posts_per_second,
                fanout.member_cache_ms
            ),
            (7, 77, 500)
        );
        assert_eq!(
            (
                ingest.position_ttl_secs,
                ingest.message_ttl_secs,
                ingest.position_rate,
                ingest.message_rate,
                ingest.max_members_per_channel
            ),
            (11, 12, 13, 14, 15)
        );
    }

    #[test]
    fn only_declared_variables_may_be_read() {
        // GIVEN every variable a function declares THEN it is readable; a misspelt one is not
        for f in crate::deploy::FUNCTIONS {
            for name in f.env_required.iter().chain(f.env_optional) {
                assert!(is_declared(name), "{name}");
            }
        }
        assert!(is_declared(ENV_JWT_SECRET), "read to be refused");
        assert!(!is_declared("RIPPLE_POSITION_RATE_PER_SEC"));
    }

    #[test]
    fn the_flags_of_ripple_dev_default_to_the_settings_defaults() {
        // GIVEN the settings as `ripple dev` takes them (flattened into its arguments)
        #[derive(clap::Parser)]
        struct Dev {
            #[command(flatten)]
            settings: Settings,
        }
        // WHEN no flag is given
        let parsed = <Dev as clap::Parser>::try_parse_from(["ripple-dev"]).unwrap();
        // THEN they are the defaults tests and the handlers start from
        assert_eq!(parsed.settings, Settings::for_table("ripple"));
        // AND a flag sets its field
        let parsed =
            <Dev as clap::Parser>::try_parse_from(["ripple-dev", "--position-rate", "7"]).unwrap();
        assert_eq!(parsed.settings.position_rate, 7);
    }

    #[test]
    fn a_missing_table_says_what_to_set() {
        let err = Settings::from_lookup(lookup(&[])).unwrap_err();
        assert!(
            err.to_string().starts_with("RIPPLE_TABLE is not set"),
            "{err}"
        );
    }

    #[test]
    fn a_malformed_number_names_the_variable() {
        let err = Settings::from_lookup(lookup(&[
            ("RIPPLE_TABLE", "t"),
            ("RIPPLE_MAX_IN_FLIGHT", "lots"),
        ]))
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("RIPPLE_MAX_IN_FLIGHT=\"lots\" is invalid"),
            "{err}"
        );
    }

    #[test]
    fn a_secret_in_the_environment_is_refused_and_auth_is_required_by_default() {
        // GIVEN a deployed function's environment with the secret itself in it
        let err = Settings::from_lookup(lookup(&[
            ("RIPPLE_TABLE", "t"),
            ("RIPPLE_JWT_SECRET", "hunter2hunter2"),
        ]))
        .unwrap_err();
        // THEN it refuses to start, pointing at the SSM parameter, without echoing the secret
        let msg = err.to_string();
        assert!(msg.contains("RIPPLE_JWT_SECRET_PARAMETER"), "{msg}");
        assert!(!msg.contains("hunter2"), "{msg}");
        // GIVEN no auth settings at all: connect must not start
        let s = Settings::from_lookup(lookup(&[("RIPPLE_TABLE", "t")])).unwrap();
        assert!(!s.allow_anonymous);
        assert!(s.require_auth_or_anonymous().is_err());
        // AND each way of satisfying it works
        for pair in [
            ("RIPPLE_JWT_SECRET_PARAMETER", "/ripple/jwt-secret"),
            (
                "RIPPLE_JWKS_URL",
                "https://example.com/.well-known/jwks.json",
            ),
            ("RIPPLE_ALLOW_ANONYMOUS", "true"),
        ] {
            let s = Settings::from_lookup(lookup(&[("RIPPLE_TABLE", "t"), pair])).unwrap();
            assert!(s.require_auth_or_anonymous().is_ok(), "{pair:?}");
        }
        // AND a plain-http key set off loopback is refused
        let err = Settings::from_lookup(lookup(&[
            ("RIPPLE_TABLE", "t"),
            ("RIPPLE_JWKS_URL", "http://example.com/jwks.json"),
        ]))
        .unwrap_err();
        assert!(err.to_string().contains("RIPPLE_JWKS_URL"), "{err}");
    }

    #[test]
    fn defaults_apply_and_overrides_win() {
        let s = Settings::from_lookup(lookup(&[
            ("RIPPLE_TABLE", "ripple"),
            ("RIPPLE_POSTS_PER_SECOND", "500"),
            ("RIPPLE_CONNECTIONS_ENDPOINT", "http://127.0.0.1:9/"),
        ]))
        .unwrap();
        assert_eq!(s.posts_per_second, 500);
        assert_eq!(s.max_in_flight, DEFAULT_MAX_IN_FLIGHT);
        assert_eq!(
            s.connections_endpoint.as_deref(),
            Some("http://127.0.0.1:9")
        );
    }
}
