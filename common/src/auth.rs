//! `$connect` authentication: HS256 JSON Web Tokens, verified with the secret in
//! `RIPPLE_JWT_SECRET`. The token's `sub` is the connection's identity. `exp` is required; `nbf`
//! is honoured when present; 30 s of clock leeway either way.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{KeyInit, Mac};
use serde::Deserialize;

/// Clock skew tolerated on `exp` and `nbf`.
pub const LEEWAY_SECS: u64 = 30;

/// Why a token was refused (never shown to the client beyond "unauthorized").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("no token: pass ?token=… or Sec-WebSocket-Protocol")]
    Missing,
    #[error("token is not a JWT")]
    Malformed,
    #[error("token algorithm must be HS256")]
    WrongAlgorithm,
    #[error("token signature does not match")]
    BadSignature,
    #[error("token has expired")]
    Expired,
    #[error("token is not valid yet")]
    NotYetValid,
    #[error("token has no `exp`")]
    NoExpiry,
    #[error("token has no usable `sub`")]
    NoSubject,
}

#[derive(Deserialize)]
struct Header {
    alg: String,
}

#[derive(Deserialize)]
struct Claims {
    sub: Option<String>,
    exp: Option<f64>,
    nbf: Option<f64>,
}

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

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

/// Verifies `token` with `secret` at `now_secs`; returns its `sub`.
pub fn verify_hs256(token: &str, secret: &[u8], now_secs: u64) -> Result<String, AuthError> {
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(AuthError::Malformed);
    };
    let decode = |s: &str| URL_SAFE_NO_PAD.decode(s).map_err(|_| AuthError::Malformed);
    let header: Header =
        serde_json::from_slice(&decode(header)?).map_err(|_| AuthError::Malformed)?;
    if header.alg != "HS256" {
        return Err(AuthError::WrongAlgorithm);
    }
    let mut mac = HmacSha256::new_from_slice(secret).map_err(|_| AuthError::BadSignature)?;
    mac.update(&token.as_bytes()[..token.len() - signature.len() - 1]);
    mac.verify_slice(&decode(signature)?)
        .map_err(|_| AuthError::BadSignature)?;
    let claims: Claims =
        serde_json::from_slice(&decode(payload)?).map_err(|_| AuthError::Malformed)?;
    let now = now_secs as f64;
    let exp = claims.exp.ok_or(AuthError::NoExpiry)?;
    if exp + LEEWAY_SECS as f64 <= now {
        return Err(AuthError::Expired);
    }
    if claims.nbf.is_some_and(|nbf| nbf > now + LEEWAY_SECS as f64) {
        return Err(AuthError::NotYetValid);
    }
    match claims.sub {
        Some(sub) if crate::protocol::validate_user(&sub).is_ok() => Ok(sub),
        _ => Err(AuthError::NoSubject),
    }
}

/// Signs claims as an HS256 JWT (for tests, `ripple` tooling and examples).
pub fn sign_hs256(claims: &serde_json::Value, secret: &[u8]) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    let signing_input = format!("{header}.{payload}");
    let signature = match HmacSha256::new_from_slice(secret) {
        Ok(mut mac) => {
            mac.update(signing_input.as_bytes());
            URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
        }
        Err(_) => String::new(),
    };
    format!("{signing_input}.{signature}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SECRET: &[u8] = b"s3cret";
    const NOW: u64 = 1_795_000_000;

    #[test]
    fn a_valid_token_yields_its_subject() {
        let t = sign_hs256(&json!({"sub":"alice","exp":NOW + 60}), SECRET);
        assert!(looks_like_jwt(&t));
        assert_eq!(verify_hs256(&t, SECRET, NOW), Ok("alice".into()));
    }

    #[test]
    fn expired_forged_and_odd_tokens_are_refused() {
        let expired = sign_hs256(&json!({"sub":"a","exp":NOW - 3600}), SECRET);
        assert_eq!(verify_hs256(&expired, SECRET, NOW), Err(AuthError::Expired));
        let forged = sign_hs256(&json!({"sub":"a","exp":NOW + 60}), b"other");
        assert_eq!(
            verify_hs256(&forged, SECRET, NOW),
            Err(AuthError::BadSignature)
        );
        let no_exp = sign_hs256(&json!({"sub":"a"}), SECRET);
        assert_eq!(verify_hs256(&no_exp, SECRET, NOW), Err(AuthError::NoExpiry));
        let no_sub = sign_hs256(&json!({"exp":NOW + 60}), SECRET);
        assert_eq!(
            verify_hs256(&no_sub, SECRET, NOW),
            Err(AuthError::NoSubject)
        );
        let future = sign_hs256(
            &json!({"sub":"a","exp":NOW + 7200,"nbf":NOW + 3600}),
            SECRET,
        );
        assert_eq!(
            verify_hs256(&future, SECRET, NOW),
            Err(AuthError::NotYetValid)
        );
        assert_eq!(verify_hs256("a.b", SECRET, NOW), Err(AuthError::Malformed));
        // alg "none" with an empty signature must never pass
        let none = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#),
            URL_SAFE_NO_PAD.encode(br#"{"sub":"a","exp":9999999999}"#)
        );
        assert!(verify_hs256(&none, SECRET, NOW).is_err());
        // a tampered payload breaks the signature
        let good = sign_hs256(&json!({"sub":"alice","exp":NOW + 60}), SECRET);
        let parts: Vec<&str> = good.split('.').collect();
        let evil = format!(
            "{}.{}.{}",
            parts[0],
            URL_SAFE_NO_PAD.encode(br#"{"sub":"mallory","exp":9999999999}"#),
            parts[2]
        );
        assert_eq!(
            verify_hs256(&evil, SECRET, NOW),
            Err(AuthError::BadSignature)
        );
    }
}
