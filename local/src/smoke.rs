//! `ripple smoke --url ws://…|wss://…/prod [--token A --token B]`: a one-command check of a
//! running stack (`ripple dev` or a deployed one). Two clients connect to a fresh channel; the
//! check passes when each gets `welcome` and its `snapshot`, the first hears the second `join`, a
//! position and a chat message arrive each way, and a bad frame gets its `error` frame. It prints
//! each step's round-trip time and exits non-zero naming the first step whose frame did not arrive.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use serde_json::{Value, json};

use crate::wsclient::WsClient;

/// `ripple smoke`.
#[derive(Debug, Clone, Args)]
pub struct SmokeArgs {
    /// The stack's WebSocket URL: `terraform output -raw websocket_url`, or `ws://127.0.0.1:3001`
    /// for `ripple dev`.
    #[arg(long)]
    pub url: String,
    /// A JWT per client when the stack requires one (give it twice: two different users).
    #[arg(long = "token", value_name = "JWT")]
    pub tokens: Vec<String>,
    /// Channel to use (default: a fresh `smoke-…` one, so nobody else hears the check).
    #[arg(long)]
    pub channel: Option<String>,
    /// How long to wait for each frame, in seconds.
    #[arg(long, default_value_t = 10)]
    pub timeout_secs: u64,
}

/// One step's name and how long its frame took to arrive.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub name: String,
    pub round_trip: Duration,
}

/// What a passing check measured.
#[derive(Debug, Clone)]
pub struct SmokeReport {
    pub url: String,
    pub channel: String,
    pub steps: Vec<Step>,
}

impl SmokeReport {
    /// The printed report: one line per step with its round trip.
    pub fn render(&self) -> String {
        let mut out = format!("ripple smoke: {} (channel {})\n", self.url, self.channel);
        for s in &self.steps {
            out.push_str(&format!(
                "  ok  {:<42} {:>7.1} ms\n",
                s.name,
                s.round_trip.as_secs_f64() * 1000.0
            ));
        }
        out.push_str(&format!("PASS: {} checks\n", self.steps.len()));
        out
    }
}

/// Runs the check and prints the report; a failure is returned (the command exits non-zero).
pub async fn run(args: SmokeArgs) -> anyhow::Result<()> {
    let report = check(&args).await?;
    print!("{}", report.render());
    Ok(())
}

/// `url` with `query` appended (`ws://host:port` gets a `/` first: the request line needs one).
pub(crate) fn with_query(url: &str, query: &str) -> String {
    if url.contains('?') {
        return format!("{url}&{query}");
    }
    // A URL without a path (`ws://host:port`) gets `/`: the request line needs one.
    let has_path = url
        .split_once("://")
        .is_some_and(|(_, rest)| rest.contains('/'));
    let slash = if has_path { "" } else { "/" };
    format!("{url}{slash}?{query}")
}

fn unique_suffix() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{:x}", nanos & 0xffff_ffff_ffff)
}

/// Runs every step; the error names the step that failed and what was expected.
pub async fn check(args: &SmokeArgs) -> anyhow::Result<SmokeReport> {
    let url = args.url.trim_end_matches('/').to_owned();
    if !(url.starts_with("ws://") || url.starts_with("wss://")) {
        bail!("--url must be a ws:// or wss:// URL, got {url}");
    }
    let tokens: [Option<&str>; 2] = match args.tokens.as_slice() {
        [] => [None, None],
        [a, b] => [Some(a.as_str()), Some(b.as_str())],
        _ => bail!("give --token twice (one per client, for two different users) or not at all"),
    };
    let suffix = unique_suffix();
    let channel = args
        .channel
        .clone()
        .unwrap_or_else(|| format!("smoke-{suffix}"));
    let wait = Duration::from_secs(args.timeout_secs.max(1));
    let mut steps = Vec::new();

    let connect = |who: usize| {
        let identity = match tokens[who] {
            Some(t) => format!("token={t}"),
            None => format!("user=smoke-{}-{suffix}", ["a", "b"][who]),
        };
        with_query(&url, &format!("{identity}&channel={channel}"))
    };

    // 1. A connects: welcome, then the snapshot of the channel.
    let started = Instant::now();
    let mut a = step(
        "client A: welcome",
        wait,
        WsClient::connect_with_protocol(&connect(0), None),
    )
    .await?
    .0;
    a.wait = wait;
    steps.push(Step {
        name: "client A: welcome".into(),
        round_trip: started.elapsed(),
    });
    let snap = snapshot(&mut a, &channel, "client A: snapshot").await?;
    steps.push(Step {
        name: "client A: snapshot".into(),
        round_trip: started.elapsed(),
    });
    expect_member(&snap, &a.user, "client A: snapshot")?;

    // 2. B connects; A hears B join.
    let started = Instant::now();
    let mut b = step(
        "client B: welcome",
        wait,
        WsClient::connect_with_protocol(&connect(1), None),
    )
    .await?
    .0;
    b.wait = wait;
    steps.push(Step {
        name: "client B: welcome".into(),
        round_trip: started.elapsed(),
    });
    if a.user == b.user {
        bail!(
            "both clients are user {}: give two tokens for different users",
            a.user
        );
    }
    let snap = snapshot(&mut b, &channel, "client B: snapshot").await?;
    steps.push(Step {
        name: "client B: snapshot".into(),
        round_trip: started.elapsed(),
    });
    expect_member(&snap, &b.user, "client B: snapshot")?;
    let b_user = b.user.clone();
    let ch = channel.clone();
    event(&mut a, "client A: hears B join", |e| {
        e["type"] == "join" && e["user"] == b_user.as_str() && e["channel"] == ch.as_str()
    })
    .await?;
    steps.push(Step {
        name: "client A: hears B join".into(),
        round_trip: started.elapsed(),
    });

    // 3. A position and a chat message each way.
    let seq = ripple_common::now_ms();
    for (from_a, kind) in [
        (true, "position"),
        (false, "position"),
        (true, "message"),
        (false, "message"),
    ] {
        let (sender, receiver) = if from_a {
            (&mut a, &mut b)
        } else {
            (&mut b, &mut a)
        };
        let (s, r) = if from_a { ("A", "B") } else { ("B", "A") };
        let text = format!("smoke {suffix} from {s}");
        let frame = if kind == "position" {
            json!({"action": "position", "channel": channel, "x": 1.5, "y": -2.0, "z": 0.0, "seq": seq})
        } else {
            json!({"action": "message", "channel": channel, "text": text})
        };
        let name = format!("{kind} {s} → {r}");
        let started = Instant::now();
        sender
            .send(&frame.to_string())
            .await
            .with_context(|| format!("{name}: sending"))?;
        let from = sender.user.clone();
        let ch = channel.clone();
        event(receiver, &name, |e| {
            e["type"] == kind
                && e["user"] == from.as_str()
                && e["channel"] == ch.as_str()
                && (kind == "position" || e["text"] == text.as_str())
        })
        .await?;
        steps.push(Step {
            name,
            round_trip: started.elapsed(),
        });
    }

    // 4. A bad frame gets the error frame, to its sender.
    let name = "bad frame → error frame";
    let started = Instant::now();
    a.send(r#"{"action":"smoke-no-such-action"}"#)
        .await
        .with_context(|| format!("{name}: sending"))?;
    loop {
        let frame = a
            .next_frame()
            .await
            .with_context(|| format!("FAIL {name}: no error frame for an unknown action"))?
            .with_context(|| format!("FAIL {name}: the connection closed"))?;
        if frame["type"] == "error" {
            if frame["code"] != "unknown_action" {
                bail!("FAIL {name}: expected code unknown_action, got {frame}");
            }
            break;
        }
    }
    steps.push(Step {
        name: name.into(),
        round_trip: started.elapsed(),
    });
    a.close().await;
    b.close().await;
    Ok(SmokeReport {
        url,
        channel,
        steps,
    })
}

async fn step<T>(
    name: &str,
    wait: Duration,
    fut: impl std::future::Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<T> {
    match tokio::time::timeout(wait, fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(e.context(format!("FAIL {name}"))),
        Err(_) => bail!("FAIL {name}: nothing arrived within {wait:?}"),
    }
}

/// Reads frames until the snapshot of `channel`.
async fn snapshot(client: &mut WsClient, channel: &str, name: &str) -> anyhow::Result<Value> {
    loop {
        let frame = client
            .next_frame()
            .await
            .with_context(|| format!("FAIL {name}: no snapshot of {channel}"))?
            .with_context(|| format!("FAIL {name}: the connection closed"))?;
        if frame["type"] == "snapshot" && frame["channel"] == channel {
            return Ok(frame);
        }
        client.seen.push(frame);
    }
}

fn expect_member(snapshot: &Value, user: &str, name: &str) -> anyhow::Result<()> {
    let listed = snapshot["members"]
        .as_array()
        .is_some_and(|m| m.iter().any(|u| u == user));
    if !listed {
        bail!("FAIL {name}: {user} is not among the members: {snapshot}");
    }
    Ok(())
}

/// Waits for an event matching `pred` (also among frames already read).
async fn event(
    client: &mut WsClient,
    name: &str,
    pred: impl Fn(&Value) -> bool,
) -> anyhow::Result<()> {
    if client.seen_events().iter().any(&pred) {
        return Ok(());
    }
    client
        .wait_for_event(pred)
        .await
        .map(|_| ())
        .with_context(|| format!("FAIL {name}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_query_is_appended_to_a_url_with_or_without_one() {
        assert_eq!(with_query("wss://x/prod", "a=1"), "wss://x/prod?a=1");
        assert_eq!(with_query("ws://x/?k=v", "a=1"), "ws://x/?k=v&a=1");
        assert_eq!(
            with_query("ws://127.0.0.1:3001", "a=1"),
            "ws://127.0.0.1:3001/?a=1"
        );
    }
}
