//! `ripple dev`'s own routes next to API Gateway's: the JavaScript client library the demo page
//! loads, and where this `ripple dev` keeps its data (for `ripple publish`).

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use serde::{Deserialize, Serialize};

/// The compiled client library (`clients/js`, built with `tsc`, committed so that a fresh clone
/// builds without npm; `scripts/client-test.sh` checks it matches the TypeScript source).
pub const CLIENT_JS: &str = include_str!("../../../clients/js/dist/ripple-client.js");
/// Where the client library is served.
pub const CLIENT_JS_PATH: &str = "/ripple-client.js";
/// Where [`LocalInfo`] is served.
pub const INFO_PATH: &str = "/_local/info";

/// Where a running `ripple dev` keeps its data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LocalInfo {
    pub dynamodb_endpoint: String,
    pub table: String,
}

/// The routes, to merge into the gateway's router.
pub fn router(info: LocalInfo) -> Router {
    Router::new()
        .route(
            CLIENT_JS_PATH,
            get(|| async {
                (
                    [
                        (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
                        // pages served from elsewhere may import it as a module
                        (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
                    ],
                    CLIENT_JS,
                )
                    .into_response()
            }),
        )
        .route(INFO_PATH, get(move || async move { axum::Json(info) }))
}
