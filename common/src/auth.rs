//! `$connect` authentication and channel authorization.
//!
//! Tokens are JSON Web Tokens verified with the `jsonwebtoken` crate:
//! - **HS256** with a shared secret (`RIPPLE_JWT_SECRET` for `ripple dev`; on Lambda the secret is
//!   read at cold start from the SSM parameter named by `RIPPLE_JWT_SECRET_PARAMETER`);
//! - **RS256** and **ES256** (P-256) with public keys from a JWKS URL (`RIPPLE_JWKS_URL`), chosen
//!   by the token's `kid`. The set is fetched on first use and kept for the life of the instance;
//!   a token naming an unknown `kid` triggers one refetch, at most once per minute, so key
//!   rotation works and a flood of made-up `kid`s cannot hammer the issuer.
//!
//! A token's `alg` must match the kind of key that verifies it: HS256 only ever uses the secret,
//! RS256 only RSA keys and ES256 only P-256 keys of the set (so an HS256 token "signed" with an
//! RSA public key is refused), and `none` is never accepted. `exp` is required, `nbf` honoured,
//! `iss` and `aud` checked (and then required) when configured; 30 s of clock leeway. The
//! identity is `sub`.
//!
//! Channel permissions come from two optional claims ([`Grant`]): `channels`, the channel names or
//! prefixes ending in `*` the token may join (absent: every channel), and `publish`, the channels
//! it may publish positions and messages to (absent: the same as `channels`; `[]`: read-only).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::protocol::{MAX_CHANNEL_CHARS, validate_channel, validate_user};

/// Clock skew tolerated on `exp` and `nbf`.
pub const LEEWAY_SECS: u64 = 30;
/// A token with an unknown `kid` refetches the key set at most this often.
pub const JWKS_REFETCH_INTERVAL: Duration = Duration::from_secs(60);
/// After a failed fetch, the next attempt waits this long.
pub const JWKS_RETRY_AFTER_FAILURE: Duration = Duration::from_secs(5);
/// Largest key set accepted.
pub const MAX_JWKS_BYTES: usize = 1024 * 1024;
/// How long one key set fetch may take.
pub const JWKS_FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// Most entries in a `channels` or `publish` claim.
pub const MAX_GRANT_ENTRIES: usize = 64;

/// Why a token was refused (never shown to the client beyond "Unauthorized").
#[derive(Debug, Clone, thiserror::Error)]
pub enum AuthError {
    #[error("no token: pass ?token=… or Sec-WebSocket-Protocol")]
    Missing,
    #[error("token is not a JWT")]
    Malformed,
    #[error("token algorithm {0} is not accepted here")]
    WrongAlgorithm(String),
    #[error("token `kid` {0:?} is not in the key set")]
    UnknownKey(Option<String>),
    #[error("token signature does not match")]
    BadSignature,
    #[error("token has expired")]
    Expired,
    #[error("token is not valid yet")]
    NotYetValid,
    #[error("token issuer is not the configured one")]
    WrongIssuer,
    #[error("token audience is not the configured one")]
    WrongAudience,
    #[error("token lacks the required claim `{0}`")]
    MissingClaim(String),
    #[error("token has no usable `sub`")]
    NoSubject,
    #[error("token claims are malformed: {0}")]
    BadClaims(#[source] std::sync::Arc<serde_json::Error>),
    #[error("token grant is malformed: {0}")]
    BadGrant(String),
    #[error("the key set at {url} is unavailable")]
    KeysUnavailable {
        url: String,
        #[source]
        source: Arc<JwksError>,
    },
}

impl AuthError {
    /// Whether the refusal is the server's fault (the key set could not be read), not the token's.
    pub fn is_server_error(&self) -> bool {
        matches!(self, AuthError::KeysUnavailable { .. })
    }
}

/// Why a key set could not be read.
#[derive(Debug, thiserror::Error)]
pub enum JwksError {
    #[error("no TLS root certificates: {0}")]
    Tls(#[source] std::io::Error),
    #[error("bad JWKS URL")]
    Url(#[source] http::Error),
    #[error("request failed")]
    Request(#[source] hyper_util::client::legacy::Error),
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    #[error("answered HTTP {0}")]
    Status(u16),
    #[error("body unreadable or larger than {MAX_JWKS_BYTES} bytes")]
    Body(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("not a JSON Web Key Set")]
    Json(#[source] serde_json::Error),
}

/// What a token may do with channels: from the `channels` and `publish` claims.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    /// Channels or `prefix*` patterns the token may join; `None`: every channel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channels: Option<Vec<String>>,
    /// Channels or `prefix*` patterns it may publish to; `None`: the same as `channels`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publish: Option<Vec<String>>,
}

impl Grant {
    /// Whether this grants everything (no `channels`, no `publish` claim).
    pub fn is_everything(&self) -> bool {
        self.channels.is_none() && self.publish.is_none()
    }

    /// Whether `channel` may be joined.
    pub fn may_join(&self, channel: &str) -> bool {
        self.channels
            .as_deref()
            .is_none_or(|patterns| matches_any(patterns, channel))
    }

    /// Whether positions and messages may be published to `channel` (which must also be joined,
    /// so the join grant applies as well).
    pub fn may_publish(&self, channel: &str) -> bool {
        self.may_join(channel)
            && self
                .publish
                .as_deref()
                .is_none_or(|patterns| matches_any(patterns, channel))
    }

    /// Checks the patterns: each a channel name, or a prefix of channel characters followed by
    /// one `*` at the end.
    pub fn validate(&self) -> Result<(), String> {
        for (claim, patterns) in [("channels", &self.channels), ("publish", &self.publish)] {
            let Some(patterns) = patterns else { continue };
            if patterns.len() > MAX_GRANT_ENTRIES {
                return Err(format!(
                    "`{claim}` has more than {MAX_GRANT_ENTRIES} entries"
                ));
            }
            for p in patterns {
                let ok = match p.strip_suffix('*') {
                    Some("") => true,
                    Some(prefix) => {
                        prefix.len() < MAX_CHANNEL_CHARS && validate_channel(prefix).is_ok()
                    }
                    None => validate_channel(p).is_ok(),
                };
                if !ok {
                    return Err(format!("`{claim}` entry {p:?} is not a channel or prefix*"));
                }
            }
        }
        Ok(())
    }
}

fn matches_any(patterns: &[String], channel: &str) -> bool {
    patterns.iter().any(|p| match p.strip_suffix('*') {
        Some(prefix) => channel.starts_with(prefix),
        None => p == channel,
    })
}

/// Who a verified token says the connection is, and what it may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The token's `sub`.
    pub user: String,
    pub grant: Grant,
}

/// The claims Ripple reads (the registered ones are checked by `jsonwebtoken`).
#[derive(Deserialize)]
struct Claims {
    sub: Option<String>,
    #[serde(default)]
    channels: Option<Vec<String>>,
    #[serde(default)]
    publish: Option<Vec<String>>,
}

/// Whether `s` looks like a compact JWT (three base64url parts).
pub fn looks_like_jwt(s: &str) -> bool {
    let parts: Vec<&str> = s.split('.').collect();
    parts.len() == 3
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// How tokens are checked: which keys, which issuer and audience.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthConfig {
    /// HS256 shared secret.
    pub hs256_secret: Option<Vec<u8>>,
    /// Where the RS256 / ES256 public keys are published.
    pub jwks_url: Option<String>,
    /// Required `iss`.
    pub issuer: Option<String>,
    /// Required `aud` (one of the token's audiences).
    pub audience: Option<String>,
}

impl AuthConfig {
    /// Whether any way of verifying a token is configured.
    pub fn is_enabled(&self) -> bool {
        self.hs256_secret.is_some() || self.jwks_url.is_some()
    }
}

#[derive(Clone)]
struct KeyEntry {
    alg: Algorithm,
    key: DecodingKey,
}

type HttpClient = hyper_util::client::legacy::Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    http_body_util::Empty<bytes::Bytes>,
>;

#[derive(Default)]
struct JwksState {
    keys: HashMap<String, KeyEntry>,
    /// When the next fetch may happen (None: never fetched).
    next_fetch: Option<Instant>,
    client: Option<HttpClient>,
    fetches: u64,
}

/// Verifies tokens; built once per instance and shared (it caches the key set).
#[derive(Clone)]
pub struct Verifier {
    inner: Arc<Inner>,
}

struct Inner {
    secret: Option<DecodingKey>,
    jwks_url: Option<String>,
    issuer: Option<String>,
    audience: Option<String>,
    refetch_interval: Duration,
    jwks: tokio::sync::Mutex<JwksState>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("hs256", &self.inner.secret.is_some())
            .field("jwks_url", &self.inner.jwks_url)
            .field("issuer", &self.inner.issuer)
            .field("audience", &self.inner.audience)
            .finish()
    }
}

impl Verifier {
    pub fn new(config: &AuthConfig) -> Self {
        Self::with_refetch_interval(config, JWKS_REFETCH_INTERVAL)
    }

    /// As [`Verifier::new`], with another refetch interval (tests of key rotation).
    pub fn with_refetch_interval(config: &AuthConfig, refetch_interval: Duration) -> Self {
        Self {
            inner: Arc::new(Inner {
                secret: config.hs256_secret.as_deref().map(DecodingKey::from_secret),
                jwks_url: config.jwks_url.clone(),
                issuer: config.issuer.clone(),
                audience: config.audience.clone(),
                refetch_interval,
                jwks: tokio::sync::Mutex::new(JwksState::default()),
            }),
        }
    }

    /// Whether tokens are required (a secret or a key set is configured).
    pub fn is_enabled(&self) -> bool {
        self.inner.secret.is_some() || self.inner.jwks_url.is_some()
    }

    /// How many times the key set was requested (for tests and logs).
    pub async fn jwks_fetches(&self) -> u64 {
        self.inner.jwks.lock().await.fetches
    }

    /// Verifies `token`; returns its identity and grant.
    pub async fn verify(&self, token: &str) -> Result<Identity, AuthError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| header_refusal(token))?;
        let key = match header.alg {
            Algorithm::HS256 => self
                .inner
                .secret
                .clone()
                .ok_or_else(|| AuthError::WrongAlgorithm("HS256".into()))?,
            Algorithm::RS256 | Algorithm::ES256 => {
                if self.inner.jwks_url.is_none() {
                    return Err(AuthError::WrongAlgorithm(format!("{:?}", header.alg)));
                }
                let kid = header.kid.clone().ok_or(AuthError::UnknownKey(None))?;
                let entry = self.key_for(&kid).await?;
                if entry.alg != header.alg {
                    return Err(AuthError::WrongAlgorithm(format!(
                        "{:?} with a {:?} key",
                        header.alg, entry.alg
                    )));
                }
                entry.key
            }
            other => return Err(AuthError::WrongAlgorithm(format!("{other:?}"))),
        };
        let mut validation = Validation::new(header.alg);
        validation.leeway = LEEWAY_SECS;
        validation.validate_nbf = true;
        let mut required = vec!["exp", "sub"];
        if let Some(iss) = &self.inner.issuer {
            validation.set_issuer(&[iss]);
            required.push("iss");
        }
        match &self.inner.audience {
            Some(aud) => {
                validation.set_audience(&[aud]);
                required.push("aud");
            }
            None => validation.validate_aud = false,
        }
        validation.set_required_spec_claims(&required);
        let data = jsonwebtoken::decode::<Claims>(token, &key, &validation).map_err(refusal_of)?;
        let claims = data.claims;
        let user = match claims.sub {
            Some(sub) if validate_user(&sub).is_ok() => sub,
            _ => return Err(AuthError::NoSubject),
        };
        let grant = Grant {
            channels: claims.channels,
            publish: claims.publish,
        };
        grant.validate().map_err(AuthError::BadGrant)?;
        Ok(Identity { user, grant })
    }

    /// The key named `kid`, refetching the set when it is unknown and a fetch is due.
    async fn key_for(&self, kid: &str) -> Result<KeyEntry, AuthError> {
        let url = self.inner.jwks_url.clone().unwrap_or_default();
        let mut state = self.inner.jwks.lock().await;
        if let Some(entry) = state.keys.get(kid) {
            return Ok(entry.clone());
        }
        let now = Instant::now();
        if state.next_fetch.is_some_and(|at| now < at) {
            return Err(AuthError::UnknownKey(Some(kid.to_owned())));
        }
        state.fetches += 1;
        match fetch_jwks(&mut state.client, &url).await {
            Ok(set) => {
                state.keys = keys_of(&set);
                state.next_fetch = Some(now + self.inner.refetch_interval);
                tracing::info!(url, keys = state.keys.len(), "fetched the JWKS");
            }
            Err(err) => {
                state.next_fetch = Some(now + JWKS_RETRY_AFTER_FAILURE);
                tracing::error!(url, error = %err, "could not fetch the JWKS");
                return Err(AuthError::KeysUnavailable {
                    url,
                    source: Arc::new(err),
                });
            }
        }
        state
            .keys
            .get(kid)
            .cloned()
            .ok_or_else(|| AuthError::UnknownKey(Some(kid.to_owned())))
    }
}

/// Why a header `jsonwebtoken` cannot read was refused: an `alg` it does not support (`none`
/// among them), or no JWT at all.
fn header_refusal(token: &str) -> AuthError {
    use base64::Engine;
    let alg = token
        .split('.')
        .next()
        .and_then(|h| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(h)
                .ok()
        })
        .and_then(|h| serde_json::from_slice::<serde_json::Value>(&h).ok())
        .and_then(|h| h.get("alg").and_then(|a| a.as_str()).map(str::to_owned));
    match alg {
        Some(alg) => AuthError::WrongAlgorithm(alg),
        None => AuthError::Malformed,
    }
}

fn refusal_of(err: jsonwebtoken::errors::Error) -> AuthError {
    use jsonwebtoken::errors::ErrorKind as K;
    match err.kind() {
        K::InvalidSignature => AuthError::BadSignature,
        K::ExpiredSignature => AuthError::Expired,
        K::ImmatureSignature => AuthError::NotYetValid,
        K::InvalidIssuer => AuthError::WrongIssuer,
        K::InvalidAudience => AuthError::WrongAudience,
        K::MissingRequiredClaim(c) if c == "sub" => AuthError::NoSubject,
        K::MissingRequiredClaim(c) => AuthError::MissingClaim(c.clone()),
        K::InvalidAlgorithm | K::InvalidAlgorithmName => {
            AuthError::WrongAlgorithm("mismatch".into())
        }
        K::Json(e) => AuthError::BadClaims(e.clone()),
        _ => AuthError::Malformed,
    }
}

/// The usable keys of a set, by `kid`: RSA keys verify RS256, P-256 keys ES256; a key whose own
/// `alg` says otherwise, or of another kind, is skipped.
fn keys_of(set: &JwkSet) -> HashMap<String, KeyEntry> {
    let mut keys = HashMap::new();
    for jwk in &set.keys {
        let Some(kid) = jwk.common.key_id.clone() else {
            continue;
        };
        let alg = match &jwk.algorithm {
            AlgorithmParameters::RSA(_) => Algorithm::RS256,
            AlgorithmParameters::EllipticCurve(ec) if ec.curve == EllipticCurve::P256 => {
                Algorithm::ES256
            }
            _ => continue,
        };
        if let Some(declared) = jwk.common.key_algorithm
            && Algorithm::try_from(declared).ok() != Some(alg)
        {
            continue;
        }
        match DecodingKey::from_jwk(jwk) {
            Ok(key) => {
                keys.insert(kid, KeyEntry { alg, key });
            }
            Err(err) => tracing::warn!(kid, error = %err, "skipping an unusable JWKS key"),
        }
    }
    keys
}

async fn fetch_jwks(client: &mut Option<HttpClient>, url: &str) -> Result<JwkSet, JwksError> {
    use http_body_util::BodyExt;
    let client = match client {
        Some(c) => c,
        None => {
            let https = hyper_rustls::HttpsConnectorBuilder::new()
                .with_native_roots()
                .map_err(JwksError::Tls)?
                .https_or_http()
                .enable_http1()
                .build();
            client.insert(
                hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                    .build(https),
            )
        }
    };
    let request = http::Request::get(url)
        .header(http::header::ACCEPT, "application/json")
        .body(http_body_util::Empty::new())
        .map_err(JwksError::Url)?;
    let fetch = async {
        let response = client.request(request).await.map_err(JwksError::Request)?;
        if response.status() != http::StatusCode::OK {
            return Err(JwksError::Status(response.status().as_u16()));
        }
        let body = http_body_util::Limited::new(response.into_body(), MAX_JWKS_BYTES)
            .collect()
            .await
            .map_err(JwksError::Body)?
            .to_bytes();
        serde_json::from_slice::<JwkSet>(&body).map_err(JwksError::Json)
    };
    tokio::time::timeout(JWKS_FETCH_TIMEOUT, fetch)
        .await
        .map_err(|_| JwksError::Timeout(JWKS_FETCH_TIMEOUT))?
}

/// Signs claims as an HS256 JWT (for tests, `ripple` tooling and examples).
pub fn sign_hs256(claims: &serde_json::Value, secret: &[u8]) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret),
    )
    .unwrap_or_default()
}

/// Key pairs that issue RS256 and ES256 tokens and publish their JWKS: for tests and local
/// tooling, never for production keys (they live only in memory).
pub mod issuer {
    use aws_lc_rs::encoding::AsDer;
    use aws_lc_rs::signature::KeyPair;
    use base64::Engine;
    use jsonwebtoken::jwk::Jwk;
    use jsonwebtoken::{Algorithm, EncodingKey, Header};

    /// Why a key pair could not be made.
    #[derive(Debug, thiserror::Error)]
    pub enum IssuerError {
        #[error("key generation failed")]
        Generate,
        #[error("key encoding failed")]
        Key(#[source] jsonwebtoken::errors::Error),
    }

    /// A freshly generated private key with its `kid`.
    pub struct SigningKey {
        pub kid: String,
        pub alg: Algorithm,
        key: EncodingKey,
        public_der: Vec<u8>,
    }

    impl std::fmt::Debug for SigningKey {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("SigningKey")
                .field("kid", &self.kid)
                .field("alg", &self.alg)
                .finish()
        }
    }

    impl SigningKey {
        /// A new 2048-bit RSA key for RS256.
        pub fn rs256(kid: &str) -> Result<Self, IssuerError> {
            let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
                .map_err(|_| IssuerError::Generate)?;
            let pkcs8 = AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&pair)
                .map_err(|_| IssuerError::Generate)?;
            let body = base64::engine::general_purpose::STANDARD.encode(pkcs8.as_ref());
            let lines: Vec<&str> = body
                .as_bytes()
                .chunks(64)
                .filter_map(|c| std::str::from_utf8(c).ok())
                .collect();
            let pem = format!(
                "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
                lines.join("\n")
            );
            Ok(Self {
                kid: kid.to_owned(),
                alg: Algorithm::RS256,
                key: EncodingKey::from_rsa_pem(pem.as_bytes()).map_err(IssuerError::Key)?,
                public_der: pair.public_key().as_ref().to_vec(),
            })
        }

        /// A new P-256 key for ES256.
        pub fn es256(kid: &str) -> Result<Self, IssuerError> {
            let alg = &aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED_SIGNING;
            let pair = aws_lc_rs::signature::EcdsaKeyPair::generate(alg)
                .map_err(|_| IssuerError::Generate)?;
            let pkcs8 = pair.to_pkcs8v1().map_err(|_| IssuerError::Generate)?;
            Ok(Self {
                kid: kid.to_owned(),
                alg: Algorithm::ES256,
                key: EncodingKey::from_ec_der(pkcs8.as_ref()),
                public_der: pair.public_key().as_ref().to_vec(),
            })
        }

        /// Signs `claims` with this key, naming its `kid`.
        pub fn sign(&self, claims: &serde_json::Value) -> String {
            let mut header = Header::new(self.alg);
            header.kid = Some(self.kid.clone());
            jsonwebtoken::encode(&header, claims, &self.key).unwrap_or_default()
        }

        /// The public key's bytes (what an attacker could read from the JWKS).
        pub fn public_key_bytes(&self) -> &[u8] {
            &self.public_der
        }

        /// The public key as a JWK, with `kid`, `alg` and `use: sig`.
        pub fn jwk(&self) -> Result<serde_json::Value, IssuerError> {
            let mut jwk = Jwk::from_encoding_key(&self.key, self.alg).map_err(IssuerError::Key)?;
            jwk.common.key_id = Some(self.kid.clone());
            jwk.common.public_key_use = Some(jsonwebtoken::jwk::PublicKeyUse::Signature);
            serde_json::to_value(jwk).map_err(|e| IssuerError::Key(e.into()))
        }
    }

    /// A JWKS document with the public keys of `keys`.
    pub fn jwks(keys: &[&SigningKey]) -> Result<serde_json::Value, IssuerError> {
        let keys = keys
            .iter()
            .map(|k| k.jwk())
            .collect::<Result<Vec<_>, _>>()?;
        Ok(serde_json::json!({ "keys": keys }))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::issuer::{SigningKey, jwks};
    use super::*;
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use serde_json::{Value, json};

    const SECRET: &[u8] = b"s3cret-of-at-least-some-length";

    fn now() -> u64 {
        crate::now_ms() / 1000
    }

    fn claims(sub: &str) -> Value {
        json!({"sub": sub, "exp": now() + 300})
    }

    fn hs256_only() -> Verifier {
        Verifier::new(&AuthConfig {
            hs256_secret: Some(SECRET.to_vec()),
            ..AuthConfig::default()
        })
    }

    /// A JWKS served on loopback; the document can be swapped to rotate keys.
    struct JwksServer {
        url: String,
        doc: Arc<std::sync::Mutex<Value>>,
        _stop: tokio::sync::oneshot::Sender<()>,
    }

    async fn serve(doc: Value) -> JwksServer {
        let doc = Arc::new(std::sync::Mutex::new(doc));
        let served = Arc::clone(&doc);
        let app = axum::Router::new().route(
            "/.well-known/jwks.json",
            axum::routing::get(move || {
                let doc = served.lock().unwrap().clone();
                async move { axum::Json(doc) }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!(
            "http://{}/.well-known/jwks.json",
            listener.local_addr().unwrap()
        );
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = rx.await;
                })
                .await;
        });
        JwksServer {
            url,
            doc,
            _stop: tx,
        }
    }

    fn jwks_verifier(url: &str, issuer: Option<&str>, audience: Option<&str>) -> Verifier {
        Verifier::new(&AuthConfig {
            hs256_secret: Some(SECRET.to_vec()),
            jwks_url: Some(url.to_owned()),
            issuer: issuer.map(str::to_owned),
            audience: audience.map(str::to_owned),
        })
    }

    #[tokio::test]
    async fn valid_rs256_es256_and_hs256_tokens_yield_their_subject() {
        // GIVEN an issuer with an RSA and an EC key, published as a JWKS
        let rsa = SigningKey::rs256("rsa-1").unwrap();
        let ec = SigningKey::es256("ec-1").unwrap();
        let server = serve(jwks(&[&rsa, &ec]).unwrap()).await;
        let v = jwks_verifier(&server.url, Some("https://issuer.example"), Some("ripple"));
        let full = |sub: &str| json!({"sub": sub, "exp": now() + 300, "iss": "https://issuer.example", "aud": "ripple"});
        // WHEN tokens of each kind are verified
        // THEN each identity is the token's `sub`
        let alice = v.verify(&rsa.sign(&full("alice"))).await.unwrap();
        assert_eq!(alice.user, "alice");
        assert!(alice.grant.is_everything());
        assert_eq!(v.verify(&ec.sign(&full("bob"))).await.unwrap().user, "bob");
        let hs = sign_hs256(&full("carol"), SECRET);
        assert_eq!(v.verify(&hs).await.unwrap().user, "carol");
        // AND the key set was fetched once for both keys
        assert_eq!(v.jwks_fetches().await, 1);
    }

    #[tokio::test]
    async fn every_bad_token_is_refused() {
        // GIVEN a verifier with a secret, a key set, an issuer and an audience
        let rsa = SigningKey::rs256("rsa-1").unwrap();
        let stranger = SigningKey::rs256("rsa-2").unwrap();
        let server = serve(jwks(&[&rsa]).unwrap()).await;
        let v = jwks_verifier(&server.url, Some("https://issuer.example"), Some("ripple"));
        let good = || json!({"sub": "eve", "exp": now() + 300, "iss": "https://issuer.example", "aud": "ripple"});
        let with = |k: &str, val: Value| {
            let mut c = good();
            c[k] = val;
            c
        };
        assert!(v.verify(&rsa.sign(&good())).await.is_ok());
        let b64 = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());

        // alg none, with and without a signature
        let none = format!(
            "{}.{}.",
            b64(&json!({"alg": "none", "typ": "JWT"})),
            b64(&good())
        );
        assert!(matches!(
            v.verify(&none).await,
            Err(AuthError::WrongAlgorithm(_))
        ));
        // expired, not yet valid, wrong iss, wrong aud, no sub, no exp
        let expired = rsa.sign(&with("exp", json!(now() - 3600)));
        assert!(matches!(v.verify(&expired).await, Err(AuthError::Expired)));
        let early = rsa.sign(&with("nbf", json!(now() + 3600)));
        assert!(matches!(
            v.verify(&early).await,
            Err(AuthError::NotYetValid)
        ));
        let iss = rsa.sign(&with("iss", json!("https://evil.example")));
        assert!(matches!(v.verify(&iss).await, Err(AuthError::WrongIssuer)));
        let aud = rsa.sign(&with("aud", json!("someone-else")));
        assert!(matches!(
            v.verify(&aud).await,
            Err(AuthError::WrongAudience)
        ));
        let mut no_aud = good();
        no_aud.as_object_mut().unwrap().remove("aud");
        assert!(matches!(
            v.verify(&rsa.sign(&no_aud)).await,
            Err(AuthError::MissingClaim(c)) if c == "aud"
        ));
        let mut no_sub = good();
        no_sub.as_object_mut().unwrap().remove("sub");
        assert!(matches!(
            v.verify(&rsa.sign(&no_sub)).await,
            Err(AuthError::NoSubject)
        ));
        let mut no_exp = good();
        no_exp.as_object_mut().unwrap().remove("exp");
        assert!(matches!(
            v.verify(&rsa.sign(&no_exp)).await,
            Err(AuthError::MissingClaim(c)) if c == "exp"
        ));
        // a key the set does not have
        assert!(matches!(
            v.verify(&stranger.sign(&good())).await,
            Err(AuthError::UnknownKey(Some(k))) if k == "rsa-2"
        ));
        // HS256 "signed" with the RSA public key, naming the RSA key's kid
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some("rsa-1".into());
        let confused = jsonwebtoken::encode(
            &header,
            &good(),
            &EncodingKey::from_secret(rsa.public_key_bytes()),
        )
        .unwrap();
        assert!(matches!(
            v.verify(&confused).await,
            Err(AuthError::BadSignature)
        ));
        // RS256 header on an EC-signed body and the other way round
        let ec = SigningKey::es256("rsa-1").unwrap();
        assert!(v.verify(&ec.sign(&good())).await.is_err());
        // HS256 with another secret
        let forged = sign_hs256(&good(), b"not-the-secret");
        assert!(matches!(
            v.verify(&forged).await,
            Err(AuthError::BadSignature)
        ));
        // a tampered payload under a valid signature
        let valid = rsa.sign(&good());
        let parts: Vec<&str> = valid.split('.').collect();
        let evil = format!(
            "{}.{}.{}",
            parts[0],
            b64(&with("sub", json!("root"))),
            parts[2]
        );
        assert!(matches!(
            v.verify(&evil).await,
            Err(AuthError::BadSignature)
        ));
        // not a JWT at all, and a grant of the wrong shape
        assert!(matches!(v.verify("a.b").await, Err(AuthError::Malformed)));
        let bad_grant = rsa.sign(&with("channels", json!("lobby")));
        assert!(matches!(
            v.verify(&bad_grant).await,
            Err(AuthError::BadClaims(_))
        ));
        let bad_pattern = rsa.sign(&with("channels", json!(["ro*om"])));
        assert!(matches!(
            v.verify(&bad_pattern).await,
            Err(AuthError::BadGrant(_))
        ));
    }

    #[tokio::test]
    async fn asymmetric_tokens_are_refused_without_a_key_set_and_hs256_without_a_secret() {
        // GIVEN a verifier with only a secret
        let rsa = SigningKey::rs256("rsa-1").unwrap();
        let v = hs256_only();
        // THEN an RS256 token is refused whatever its signature
        assert!(matches!(
            v.verify(&rsa.sign(&claims("a"))).await,
            Err(AuthError::WrongAlgorithm(_))
        ));
        // AND a valid HS256 one passes
        assert_eq!(
            v.verify(&sign_hs256(&claims("a"), SECRET))
                .await
                .unwrap()
                .user,
            "a"
        );
        // GIVEN a verifier with only a key set
        let server = serve(jwks(&[&rsa]).unwrap()).await;
        let v = Verifier::new(&AuthConfig {
            jwks_url: Some(server.url.clone()),
            ..AuthConfig::default()
        });
        // THEN an HS256 token is refused, even one keyed with the public key
        let forged = sign_hs256(&claims("a"), rsa.public_key_bytes());
        assert!(matches!(
            v.verify(&forged).await,
            Err(AuthError::WrongAlgorithm(_))
        ));
    }

    #[tokio::test]
    async fn an_unknown_kid_refetches_at_most_once_per_interval_and_rotation_works() {
        // GIVEN a key set with one key, already fetched
        let old = SigningKey::es256("old").unwrap();
        let new = SigningKey::es256("new").unwrap();
        let server = serve(jwks(&[&old]).unwrap()).await;
        let config = AuthConfig {
            jwks_url: Some(server.url.clone()),
            ..AuthConfig::default()
        };
        let v = Verifier::new(&config);
        assert!(v.verify(&old.sign(&claims("a"))).await.is_ok());
        assert_eq!(v.jwks_fetches().await, 1);
        // WHEN a flood of tokens names kids the set does not have
        for i in 0..20 {
            let k = SigningKey::es256(&format!("made-up-{i}")).unwrap();
            assert!(v.verify(&k.sign(&claims("a"))).await.is_err());
        }
        // THEN the set was refetched at most once
        assert!(v.jwks_fetches().await <= 2, "{}", v.jwks_fetches().await);

        // GIVEN a verifier whose refetch interval has passed (zero), and a rotated set
        let v = Verifier::with_refetch_interval(&config, Duration::ZERO);
        assert!(v.verify(&old.sign(&claims("a"))).await.is_ok());
        *server.doc.lock().unwrap() = jwks(&[&old, &new]).unwrap();
        // WHEN a token signed with the new key arrives
        // THEN the set is refetched and the token accepted
        assert_eq!(v.verify(&new.sign(&claims("b"))).await.unwrap().user, "b");
    }

    #[tokio::test]
    async fn an_unreachable_key_set_is_a_server_error_not_a_bad_token() {
        let key = SigningKey::es256("k").unwrap();
        let v = Verifier::new(&AuthConfig {
            jwks_url: Some("http://127.0.0.1:9/jwks.json".into()),
            ..AuthConfig::default()
        });
        let err = v.verify(&key.sign(&claims("a"))).await.unwrap_err();
        assert!(err.is_server_error(), "{err}");
    }

    #[test]
    fn a_grant_matches_names_and_prefixes_and_publish_defaults_to_channels() {
        let grant = Grant {
            channels: Some(vec!["lobby".into(), "room:*".into()]),
            publish: Some(vec!["room:*".into()]),
        };
        assert!(grant.validate().is_ok());
        assert!(grant.may_join("lobby") && grant.may_join("room:7"));
        assert!(!grant.may_join("arena") && !grant.may_join("lobby2"));
        assert!(grant.may_publish("room:7"));
        assert!(!grant.may_publish("lobby"));
        let same = Grant {
            channels: Some(vec!["lobby".into()]),
            publish: None,
        };
        assert!(same.may_publish("lobby") && !same.may_publish("arena"));
        let read_only = Grant {
            channels: None,
            publish: Some(vec![]),
        };
        assert!(read_only.may_join("anything") && !read_only.may_publish("anything"));
        assert!(Grant::default().may_publish("x"));
        assert!(
            Grant {
                channels: Some(vec!["*".into()]),
                publish: None
            }
            .validate()
            .is_ok()
        );
    }
}
