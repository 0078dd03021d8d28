//! Fault injection on `ripple dev`'s `@connections` API and its `$disconnect` events:
//! `--fault gone=0.1,throttle=0.05,error=0.02,latency=50ms,disconnect-loss=0.5,disconnect-delay=2000ms`.
//! Each POST first waits `latency`, then answers 410 with probability `gone`, 429 with
//! `throttle`, 500 with `error`, else is served. A closed connection's `$disconnect` is never
//! delivered with probability `disconnect-loss` (API Gateway: "best effort"), and the others come
//! up to `disconnect-delay` late.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use rand::Rng;

/// The fault mix.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FaultSpec {
    pub gone: f64,
    pub throttle: f64,
    pub error: f64,
    pub latency: Duration,
    /// Fraction of `$disconnect` events never delivered.
    pub disconnect_loss: f64,
    /// `$disconnect` events come a random time up to this late.
    pub disconnect_delay: Duration,
}

fn millis(key: &str, value: &str) -> Result<Duration, String> {
    let ms = value.strip_suffix("ms").unwrap_or(value);
    ms.parse::<u64>()
        .map(Duration::from_millis)
        .map_err(|_| format!("`{key}={value}`: expected milliseconds, e.g. 50ms"))
}

const KEYS: &str = "gone, throttle, error, latency, disconnect-loss or disconnect-delay";

impl FromStr for FaultSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut spec = FaultSpec::default();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, value) = part
                .split_once('=')
                .ok_or_else(|| format!("`{part}`: expected key=value ({KEYS})"))?;
            let prob = || -> Result<f64, String> {
                value
                    .parse::<f64>()
                    .ok()
                    .filter(|p| (0.0..=1.0).contains(p))
                    .ok_or_else(|| {
                        format!("`{key}={value}`: expected a probability between 0 and 1")
                    })
            };
            match key {
                "gone" => spec.gone = prob()?,
                "throttle" => spec.throttle = prob()?,
                "error" => spec.error = prob()?,
                "latency" => spec.latency = millis(key, value)?,
                "disconnect-loss" => spec.disconnect_loss = prob()?,
                "disconnect-delay" => spec.disconnect_delay = millis(key, value)?,
                other => return Err(format!("unknown fault `{other}`: use {KEYS}")),
            }
        }
        if spec.gone + spec.throttle + spec.error > 1.0 {
            return Err("gone + throttle + error must not exceed 1".into());
        }
        Ok(spec)
    }
}

/// An injected answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    Gone,
    Throttle,
    Error,
}

impl Fault {
    pub fn response(self) -> Response {
        let (status, kind) = match self {
            Fault::Gone => (StatusCode::GONE, "GoneException"),
            Fault::Throttle => (StatusCode::TOO_MANY_REQUESTS, "LimitExceededException"),
            Fault::Error => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalServerErrorException",
            ),
        };
        let mut r = (status, format!(r#"{{"message":"injected {kind}"}}"#)).into_response();
        if let Ok(v) = axum::http::HeaderValue::from_str(kind) {
            r.headers_mut().insert("x-amzn-errortype", v);
        }
        r
    }
}

/// Shared, cheap to clone; clones see [`Faults::set`] (a test lifts a fault on a running stack).
#[derive(Debug, Clone, Default)]
pub struct Faults {
    spec: Arc<std::sync::RwLock<FaultSpec>>,
}

impl Faults {
    pub fn new(spec: FaultSpec) -> Self {
        Self {
            spec: Arc::new(std::sync::RwLock::new(spec)),
        }
    }

    /// From now on, posts draw from `spec`.
    pub fn set(&self, spec: FaultSpec) {
        if let Ok(mut current) = self.spec.write() {
            *current = spec;
        }
    }

    /// How a closed connection's `$disconnect` fares: `None` when it is lost, else how late it
    /// comes.
    pub fn disconnect_fate(&self) -> Option<Duration> {
        let spec = self.spec.read().map(|s| s.clone()).unwrap_or_default();
        let mut rng = rand::rng();
        if spec.disconnect_loss > 0.0 && rng.random::<f64>() < spec.disconnect_loss {
            return None;
        }
        Some(spec.disconnect_delay.mul_f64(rng.random::<f64>()))
    }

    /// Waits the injected latency, then draws a fault (or none).
    pub async fn pick(&self) -> Option<Fault> {
        let spec = self.spec.read().map(|s| s.clone()).unwrap_or_default();
        if !spec.latency.is_zero() {
            tokio::time::sleep(spec.latency).await;
        }
        let total = spec.gone + spec.throttle + spec.error;
        if total <= 0.0 {
            return None;
        }
        let r: f64 = rand::rng().random();
        if r < spec.gone {
            Some(Fault::Gone)
        } else if r < spec.gone + spec.throttle {
            Some(Fault::Throttle)
        } else if r < total {
            Some(Fault::Error)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fault_spec_parses_and_bad_ones_say_why() {
        let spec: FaultSpec = "gone=0.1,throttle=0.05,error=0.02,latency=50ms"
            .parse()
            .unwrap();
        assert_eq!(spec.gone, 0.1);
        assert_eq!(spec.latency, Duration::from_millis(50));
        assert!(
            "gone=2"
                .parse::<FaultSpec>()
                .unwrap_err()
                .contains("between 0 and 1")
        );
        assert!(
            "boom=0.1"
                .parse::<FaultSpec>()
                .unwrap_err()
                .contains("unknown fault")
        );
        assert!("gone=0.6,error=0.6".parse::<FaultSpec>().is_err());
        let lossy: FaultSpec = "disconnect-loss=1,disconnect-delay=20ms".parse().unwrap();
        assert_eq!(lossy.disconnect_loss, 1.0);
        assert_eq!(lossy.disconnect_delay, Duration::from_millis(20));
        assert_eq!(Faults::new(lossy).disconnect_fate(), None);
        let late = Faults::new("disconnect-delay=20ms".parse().unwrap()).disconnect_fate();
        assert!(late.is_some_and(|d| d <= Duration::from_millis(20)));
    }
}
