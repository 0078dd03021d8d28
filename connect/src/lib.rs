//! The `connect` function: API Gateway's `$connect` and `$disconnect` routes.
//!
//! `$connect` stores the connection (id, user, the domain and stage to call back, connect time,
//! TTL) and one membership per `channel` query parameter, then answers 200. A bad request answers
//! 400 and writes nothing. With a secret or a key set configured ([`ripple_common::auth`]), the
//! identity is the `sub` of a JWT from `?token=` or `Sec-WebSocket-Protocol`; a missing, expired
//! or badly signed token answers 401, a `channel` outside the token's grant 403, and both write
//! nothing. The grant is stored on the connection item so that ingest checks every later `join`
//! and publish against it; `resume` restores only the channels the new token may join. Without
//! auth, `?user=` is trusted only when anonymous connections are allowed (`ripple dev`,
//! `RIPPLE_ALLOW_ANONYMOUS=true`); otherwise every connect answers 401. `$disconnect` deletes the
//! connection and its memberships.

use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use ripple_common::apigw::response;
use ripple_common::auth::{self, AuthError, Grant, Verifier};
use ripple_common::config::Settings;
use ripple_common::items::{ConnectionItem, Endpoint, MemberItem, SessionItem};
use ripple_common::protocol::{Refusal, validate_channel, validate_client_user};
use ripple_common::store::Store;

pub mod metrics;

/// Most channels one connection may join at connect (as many as it may be in).
pub const MAX_CHANNELS_AT_CONNECT: usize = ripple_common::protocol::MAX_CHANNELS_PER_CONNECTION;

/// What the handler needs, built once per Lambda instance.
#[derive(Debug, Clone)]
pub struct ConnectState {
    pub store: Store,
    pub settings: Settings,
    /// Checks tokens (caches the key set for the instance).
    pub verifier: Verifier,
}

impl ConnectState {
    /// The state for `settings`, with a verifier of its auth settings.
    pub fn new(store: Store, settings: Settings) -> Self {
        let verifier = Verifier::new(&settings.auth_config());
        Self {
            store,
            settings,
            verifier,
        }
    }
}

/// Why the HS256 secret could not be read from SSM Parameter Store.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error(
        "could not read the SSM parameter {name} (it must be a SecureString the function may ssm:GetParameter and kms:Decrypt)"
    )]
    Read {
        name: String,
        #[source]
        source: Box<
            aws_sdk_ssm::error::SdkError<aws_sdk_ssm::operation::get_parameter::GetParameterError>,
        >,
    },
    #[error("the SSM parameter {0} has no value")]
    Empty(String),
}

/// Reads the HS256 secret from the SSM SecureString parameter `name`, decrypted (cold start).
pub async fn read_secret_parameter(
    ssm: &aws_sdk_ssm::Client,
    name: &str,
) -> Result<String, SecretError> {
    let out = ssm
        .get_parameter()
        .name(name)
        .with_decryption(true)
        .send()
        .await
        .map_err(|source| SecretError::Read {
            name: name.to_owned(),
            source: Box::new(source),
        })?;
    out.parameter
        .and_then(|p| p.value)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| SecretError::Empty(name.to_owned()))
}

/// Handles one `$connect` or `$disconnect` event, without metrics (`ripple dev`, tests).
pub async fn handle(
    state: &ConnectState,
    req: ApiGatewayWebsocketProxyRequest,
) -> ApiGatewayProxyResponse {
    handle_measured(state, req).await.0
}

/// Handles one `$connect` or `$disconnect` event and adds its metrics line ([`metrics`]) to the
/// instance's aggregator (stdout in Lambda); a store failure (500) prints at once.
pub async fn handle_with_metrics(
    state: &ConnectState,
    req: ApiGatewayWebsocketProxyRequest,
    metrics: &ripple_common::emf::Aggregator<impl std::io::Write>,
) -> ApiGatewayProxyResponse {
    let (response, line) = handle_measured(state, req).await;
    if let Some(line) = line {
        metrics.record(&line, response.status_code >= 500);
    }
    response
}

/// Handles one event: the response and its metrics line (None for events not handled here).
async fn handle_measured(
    state: &ConnectState,
    req: ApiGatewayWebsocketProxyRequest,
) -> (
    ApiGatewayProxyResponse,
    Option<ripple_common::emf::MetricLine>,
) {
    let ctx = &req.request_context;
    let Some(connection_id) = ctx.connection_id.clone() else {
        return (
            response(400, Some("requestContext.connectionId is missing")),
            None,
        );
    };
    let event_type = ctx
        .event_type
        .as_deref()
        .or(ctx.route_key.as_deref())
        .unwrap_or_default();
    let response = match event_type {
        "CONNECT" | "$connect" => on_connect(state, &req, &connection_id).await,
        "DISCONNECT" | "$disconnect" => {
            // The close happened at the event's time, not when (best effort, maybe late) it is
            // handled: the resume cursor must not skip chat written in between.
            let now = ripple_common::now_ms();
            let closed_at = u64::try_from(ctx.request_time_epoch)
                .ok()
                .filter(|t| *t > 0)
                .map_or(now, |t| t.min(now));
            on_disconnect(state, &connection_id, closed_at).await
        }
        other => {
            tracing::warn!(
                event_type = other,
                "connect received an event it does not handle"
            );
            response(400, Some("connect handles only $connect and $disconnect"))
        }
    };
    let function = ripple_common::emf::function_name(ripple_common::emf::connect::FUNCTION);
    let now = ripple_common::now_ms();
    let line = metrics::event_line(&function, now, event_type, response.status_code);
    (response, line)
}

/// The connect request, validated.
#[derive(Debug, PartialEq)]
pub struct ConnectRequest {
    pub user: String,
    /// The token's grant (None: anonymous, every channel).
    pub grant: Option<Grant>,
    pub channels: Vec<String>,
    /// `?resume=1`: rejoin the channels of this user's last connection, if it closed within the
    /// resume window.
    pub resume: bool,
    /// `?since=MS`: send the chat messages written after this time with each channel's snapshot.
    pub since: Option<u64>,
    /// The `Sec-WebSocket-Protocol` value to echo (browsers drop a socket whose offered
    /// protocol is not echoed): the token's when it came that way, else the first offered.
    pub protocol: Option<String>,
}

/// Why a connect is refused.
#[derive(Debug)]
pub enum ConnectRefusal {
    /// 400: bad parameters.
    BadRequest(Refusal),
    /// 401: auth is on and the token is missing, expired or badly signed (or auth is off and
    /// anonymous connections are not allowed).
    Unauthorized(AuthError),
    /// 403: a `channel` the token's grant does not include.
    Forbidden(String),
}

fn offered_protocols(req: &ApiGatewayWebsocketProxyRequest) -> Vec<String> {
    req.headers
        .get_all("sec-websocket-protocol")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|p| p.trim().to_owned())
        .filter(|p| !p.is_empty())
        .collect()
}

/// Reads identity (`token` or `user`) and `channel`s from the request, verifying the token when
/// auth is on.
pub async fn parse_connect(
    req: &ApiGatewayWebsocketProxyRequest,
    connection_id: &str,
    verifier: &Verifier,
    allow_anonymous: bool,
) -> Result<ConnectRequest, ConnectRefusal> {
    let offered = offered_protocols(req);
    let mut protocol = offered.first().cloned();
    let (user, grant) = if verifier.is_enabled() {
        let from_query = req
            .query_string_parameters
            .first("token")
            .map(str::to_owned);
        let from_protocol = offered.iter().find(|p| auth::looks_like_jwt(p)).cloned();
        if from_query.is_none() {
            protocol = from_protocol.clone().or(protocol);
        }
        let token = from_query
            .or(from_protocol)
            .ok_or(ConnectRefusal::Unauthorized(AuthError::Missing))?;
        let identity = verifier
            .verify(&token)
            .await
            .map_err(ConnectRefusal::Unauthorized)?;
        let grant = (!identity.grant.is_everything()).then_some(identity.grant);
        (identity.user, grant)
    } else if allow_anonymous {
        let user = req
            .query_string_parameters
            .first("user")
            .map(str::to_owned)
            .unwrap_or_else(|| connection_id.to_owned());
        (user, None)
    } else {
        return Err(ConnectRefusal::Unauthorized(AuthError::Missing));
    };
    validate_client_user(&user).map_err(ConnectRefusal::BadRequest)?;
    let mut channels: Vec<String> = Vec::new();
    let listed = req
        .multi_value_query_string_parameters
        .all("channel")
        .or_else(|| req.query_string_parameters.all("channel"))
        .unwrap_or_default();
    for channel in listed {
        validate_channel(channel).map_err(ConnectRefusal::BadRequest)?;
        if !channels.iter().any(|c| c == channel) {
            channels.push(channel.to_owned());
        }
    }
    if channels.len() > MAX_CHANNELS_AT_CONNECT {
        return Err(ConnectRefusal::BadRequest(Refusal::new(
            ripple_common::protocol::ErrorCode::BadRequest,
            format!("at most {MAX_CHANNELS_AT_CONNECT} channels at connect"),
        )));
    }
    let resume = matches!(
        req.query_string_parameters.first("resume"),
        Some("1" | "true")
    );
    let since = match req.query_string_parameters.first("since") {
        None => None,
        Some(v) => Some(v.parse::<u64>().map_err(|_| {
            ConnectRefusal::BadRequest(Refusal::new(
                ripple_common::protocol::ErrorCode::BadRequest,
                "`since` must be ms since the epoch",
            ))
        })?),
    };
    if let Some(channel) = channels
        .iter()
        .find(|c| grant.as_ref().is_some_and(|g| !g.may_join(c)))
    {
        return Err(ConnectRefusal::Forbidden(channel.clone()));
    }
    Ok(ConnectRequest {
        user,
        grant,
        channels,
        resume,
        since,
        protocol,
    })
}

async fn on_connect(
    state: &ConnectState,
    req: &ApiGatewayWebsocketProxyRequest,
    connection_id: &str,
) -> ApiGatewayProxyResponse {
    let request = match parse_connect(
        req,
        connection_id,
        &state.verifier,
        state.settings.allow_anonymous,
    )
    .await
    {
        Ok(r) => r,
        Err(ConnectRefusal::BadRequest(refusal)) => {
            tracing::info!(connection_id, reason = %refusal, "connect refused");
            return response(400, Some(&refusal.message));
        }
        Err(ConnectRefusal::Unauthorized(why)) if why.is_server_error() => {
            tracing::error!(connection_id, error = %why, "connect could not check the token");
            return response(500, None);
        }
        Err(ConnectRefusal::Unauthorized(why)) => {
            tracing::info!(connection_id, reason = %why, "connect unauthorized");
            return response(401, Some("Unauthorized"));
        }
        Err(ConnectRefusal::Forbidden(channel)) => {
            tracing::info!(
                connection_id,
                channel,
                "connect forbidden by the token's grant"
            );
            return response(403, Some("Forbidden"));
        }
    };
    let cap = state.settings.max_members_per_channel as usize;
    for channel in &request.channels {
        match state.store.count_channel_members(channel, cap).await {
            Ok(n) if n >= cap => {
                tracing::info!(connection_id, channel, cap, "connect refused: channel full");
                let why = Refusal::channel_full(channel, cap).to_string();
                return response(409, Some(&why));
            }
            Ok(_) => {}
            Err(err) => {
                tracing::error!(connection_id, error = %err, "could not count the channel's members");
                return response(500, None);
            }
        }
    }
    let ctx = &req.request_context;
    let endpoint = Endpoint {
        domain: ctx.domain_name.clone().unwrap_or_default(),
        stage: ctx.stage.clone().unwrap_or_default(),
    };
    let now = ripple_common::now_ms();
    let connected_at = u64::try_from(ctx.connected_at)
        .ok()
        .filter(|t| *t > 0)
        .unwrap_or(now);
    let expires_at = connected_at / 1000 + state.settings.connection_ttl_secs;
    let mut connection = ConnectionItem::new(
        connection_id,
        &request.user,
        &endpoint,
        connected_at,
        expires_at,
    );
    connection.grant = request.grant.clone();
    if let Err(err) = state.store.put_connection(&connection).await {
        tracing::error!(connection_id, error = %err, "could not store the connection");
        return response(500, None);
    }
    let (channels, since) = resumed(state, &request).await;
    let members: Vec<MemberItem> = channels
        .iter()
        .map(|channel| {
            let mut member = MemberItem::new(&connection, channel, now);
            member.since = since;
            member
        })
        .collect();
    if let Err(err) = state.store.put_members(&members).await {
        tracing::error!(connection_id, error = %err, "could not store the memberships; undoing the connect");
        if let Err(undo) = state.store.delete_connection(connection_id).await {
            tracing::error!(connection_id, error = %undo, "could not undo the connect; TTL will expire it");
        }
        return response(500, None);
    }
    tracing::info!(connection_id, user = %request.user, channels = members.len(), "connected");
    let mut ok = response(200, None);
    if let Some(value) = request
        .protocol
        .and_then(|p| http::HeaderValue::from_str(&p).ok())
    {
        ok.headers.insert("sec-websocket-protocol", value);
    }
    ok
}

/// The channels to join and the history cursor: the requested ones, plus, with `resume`, those
/// of the user's last session that the token may join (whose close time is then the default
/// cursor). The session is the verified `sub`'s own when auth is on.
async fn resumed(state: &ConnectState, request: &ConnectRequest) -> (Vec<String>, Option<u64>) {
    let mut channels = request.channels.clone();
    let mut since = request.since;
    if request.resume {
        match state.store.take_session(&request.user).await {
            Ok(Some(session)) if session.expires_at > ripple_common::now_ms() / 1000 => {
                let allowed = |c: &String| request.grant.as_ref().is_none_or(|g| g.may_join(c));
                for channel in session.channels.into_iter().filter(allowed) {
                    if !channels.contains(&channel) && channels.len() < MAX_CHANNELS_AT_CONNECT {
                        channels.push(channel);
                    }
                }
                since = since.or(Some(session.ended_at));
            }
            Ok(_) => {}
            Err(err) => {
                tracing::warn!(user = %request.user, error = %err, "could not read the session to resume")
            }
        }
    }
    (channels, since)
}

async fn on_disconnect(
    state: &ConnectState,
    connection_id: &str,
    closed_at: u64,
) -> ApiGatewayProxyResponse {
    match state.store.delete_connection(connection_id).await {
        Ok(deleted) => {
            tracing::info!(connection_id, items = deleted.items, "disconnected");
            let window = state.settings.resume_window_secs;
            if let (Some(user), false) = (&deleted.user, deleted.channels.is_empty()) {
                let session = SessionItem::new(user, deleted.channels, closed_at, window);
                if let Err(err) = state.store.put_session(&session).await {
                    tracing::warn!(connection_id, error = %err, "could not save the session for resume");
                }
            }
            response(200, None)
        }
        Err(err) => {
            tracing::error!(connection_id, error = %err, "could not delete the connection; TTL will expire it");
            response(500, None)
        }
    }
}
