//! A WebSocket client of Ripple's protocol (tokio-tungstenite): connect and wait for `welcome`,
//! send frames (or send one and wait for its answer), read JSON frames with a time limit, wait
//! for an event, or split it to send and read at once. `ripple smoke`, the bench's players and the
//! tests use it.

use anyhow::Context;
use serde_json::Value;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;
/// The sending half of a [`WsClient::split`] client.
pub type WsSink = futures::stream::SplitSink<Ws, tokio_tungstenite::tungstenite::Message>;

/// A Ripple WebSocket client.
pub struct WsClient {
    ws: Ws,
    /// The connection id from `welcome`.
    pub id: String,
    /// The identity from `welcome`.
    pub user: String,
    /// Frames read while waiting for something else, oldest first.
    pub seen: Vec<Value>,
    /// Events [`WsClient::wait_for_event`] has returned (each counts once).
    returned: Vec<Value>,
    /// How long [`WsClient::next_message`] waits (default [`E2E_WAIT`]).
    pub wait: std::time::Duration,
}

impl std::fmt::Debug for WsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WsClient").field("id", &self.id).finish()
    }
}

/// How long a client waits for a frame by default before it fails.
pub const E2E_WAIT: std::time::Duration = std::time::Duration::from_secs(20);

impl WsClient {
    /// Connects and waits for `welcome`, which must be the first frame.
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        Self::connect_with_protocol(url, None).await.map(|(c, _)| c)
    }

    /// The HTTP status an upgrade to `url` was refused with, or `None` when the client was
    /// welcomed. Any other failure is an error.
    pub async fn upgrade_refusal(url: &str) -> anyhow::Result<Option<u16>> {
        use tokio_tungstenite::tungstenite::Error;
        let Err(err) = Self::connect(url).await else {
            return Ok(None);
        };
        match err.chain().find_map(|e| e.downcast_ref::<Error>()) {
            Some(Error::Http(resp)) => Ok(Some(resp.status().as_u16())),
            _ => Err(err.context("the upgrade failed without an HTTP refusal")),
        }
    }

    /// Connects offering `protocol` in `Sec-WebSocket-Protocol`; returns the client and the
    /// protocol the server echoed.
    pub async fn connect_with_protocol(
        url: &str,
        protocol: Option<&str>,
    ) -> anyhow::Result<(Self, Option<String>)> {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let mut request = url.into_client_request()?;
        if let Some(p) = protocol {
            request
                .headers_mut()
                .insert("sec-websocket-protocol", p.parse()?);
        }
        let (ws, response) = tokio_tungstenite::connect_async(request)
            .await
            .with_context(|| format!("connecting to {url}"))?;
        let echoed = response
            .headers()
            .get("sec-websocket-protocol")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let mut client = Self {
            ws,
            id: String::new(),
            user: String::new(),
            seen: Vec::new(),
            returned: Vec::new(),
            wait: E2E_WAIT,
        };
        let first = client
            .next_frame()
            .await?
            .context("closed before welcome")?;
        anyhow::ensure!(
            first["type"] == "welcome",
            "first frame was not welcome: {first}"
        );
        client.id = first["connectionId"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        client.user = first["user"].as_str().unwrap_or_default().to_owned();
        Ok((client, echoed))
    }

    pub async fn send(&mut self, frame: &str) -> anyhow::Result<()> {
        use futures::SinkExt;
        self.ws
            .send(tokio_tungstenite::tungstenite::Message::text(frame))
            .await?;
        Ok(())
    }

    pub async fn send_raw(
        &mut self,
        msg: tokio_tungstenite::tungstenite::Message,
    ) -> anyhow::Result<()> {
        use futures::SinkExt;
        self.ws.send(msg).await?;
        Ok(())
    }

    /// The next JSON text frame; `None` when the socket closed. Fails after `wait`.
    pub async fn next_frame(&mut self) -> anyhow::Result<Option<Value>> {
        Ok(match self.next_message().await? {
            Some(tokio_tungstenite::tungstenite::Message::Text(t)) => {
                Some(serde_json::from_str(&t)?)
            }
            Some(other) => anyhow::bail!("unexpected message {other:?}"),
            None => None,
        })
    }

    /// The next data or close message (pings skipped); `None` when the stream ended.
    pub async fn next_message(
        &mut self,
    ) -> anyhow::Result<Option<tokio_tungstenite::tungstenite::Message>> {
        use futures::StreamExt;
        use tokio_tungstenite::tungstenite::Message;
        loop {
            let msg = tokio::time::timeout(self.wait, self.ws.next())
                .await
                .with_context(|| format!("nothing arrived within {:?}", self.wait))?;
            match msg {
                None => return Ok(None),
                Some(Err(e)) => return Err(e.into()),
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                Some(Ok(m)) => return Ok(Some(m)),
            }
        }
    }

    /// The first event matching `pred` not returned before: one already read while waiting for
    /// something else (in `seen`), or the next to arrive. Events of different channels and
    /// shards come in no given order, so the one waited for may well have come first.
    pub async fn wait_for_event(&mut self, pred: impl Fn(&Value) -> bool) -> anyhow::Result<Value> {
        let mut already = self.returned.clone();
        let earlier = self.seen_events().into_iter().find(|e| {
            if !pred(e) {
                return false;
            }
            match already.iter().position(|r| r == e) {
                Some(i) => {
                    already.remove(i);
                    false
                }
                None => true,
            }
        });
        if let Some(e) = earlier {
            self.returned.push(e.clone());
            return Ok(e);
        }
        loop {
            let frame = self
                .next_frame()
                .await?
                .context("closed while waiting for an event")?;
            let hit = frame["events"]
                .as_array()
                .and_then(|evs| evs.iter().find(|e| pred(e)).cloned());
            self.seen.push(frame);
            if let Some(e) = hit {
                self.returned.push(e.clone());
                return Ok(e);
            }
        }
    }

    /// The `snapshot` of `channel`: one already read (in `seen`), or the next to arrive (frames
    /// read meanwhile go to `seen`). Snapshots of several channels come in any order.
    pub async fn wait_for_snapshot(&mut self, channel: &str) -> anyhow::Result<Value> {
        if let Some(i) = self
            .seen
            .iter()
            .position(|f| f["type"] == "snapshot" && f["channel"] == channel)
        {
            return Ok(self.seen.remove(i));
        }
        loop {
            let frame = self
                .next_frame()
                .await?
                .context("closed while waiting for a snapshot")?;
            if frame["type"] == "snapshot" && frame["channel"] == channel {
                return Ok(frame);
            }
            self.seen.push(frame);
        }
    }

    /// Sends `frame` and waits for its answer (the route response: `joined`, `left`, `ack`, or
    /// an `error`); frames read meanwhile go to `seen`. Positions get no answer: do not ask.
    /// Frames a client sends without waiting are handled concurrently on AWS, in no order.
    pub async fn request(&mut self, frame: &str) -> anyhow::Result<Value> {
        self.send(frame).await?;
        loop {
            let reply = self
                .next_frame()
                .await?
                .context("closed while waiting for an answer")?;
            if matches!(
                reply["type"].as_str(),
                Some("joined" | "left" | "ack" | "error")
            ) {
                return Ok(reply);
            }
            self.seen.push(reply);
        }
    }

    /// Every event received so far (in `seen`).
    pub fn seen_events(&self) -> Vec<Value> {
        self.seen
            .iter()
            .flat_map(|f| f["events"].as_array().cloned().unwrap_or_default())
            .collect()
    }

    /// The socket's sending and receiving halves, for a client that sends and reads at once
    /// (the bench's players); `welcome` is already read.
    pub fn split(self) -> (WsSink, futures::stream::SplitStream<Ws>) {
        use futures::StreamExt;
        self.ws.split()
    }

    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }
}
