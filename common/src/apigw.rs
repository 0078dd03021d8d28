//! What `connect` and `ingest` answer API Gateway: a status and, optionally, a text body
//! (for a WebSocket route, API Gateway sends a message route's body back to the client).

use aws_lambda_events::apigw::ApiGatewayProxyResponse;
use aws_lambda_events::encodings::Body;

/// A proxy response with `status` and, when given, `body` as text.
pub fn response(status: i64, body: Option<&str>) -> ApiGatewayProxyResponse {
    let mut r = ApiGatewayProxyResponse::default();
    r.status_code = status;
    r.body = body.map(|b| Body::Text(b.to_owned()));
    r
}
