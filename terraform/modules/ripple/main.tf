# Ripple on AWS: API Gateway WebSocket API -> connect / ingest Lambdas -> one DynamoDB table ->
# its stream -> fanout Lambda -> API Gateway @connections.
#
# Files: dynamodb.tf (table), lambda.tf (functions, log groups, stream mapping, failure queue),
# iam.tf (one least-privilege role per function), apigateway.tf (API, routes, stage, access logs).

data "aws_partition" "current" {}

locals {
  # What the functions run on: the build's architecture unless one is asked for (and then the
  # functions' preconditions require it to be the build's).
  architecture = coalesce(var.architecture, var.build_record.architecture)

  # The @connections endpoint fanout posts to: the stage on the execute-api host, which also
  # serves connections made through a custom domain (RIPPLE_CONNECTIONS_ENDPOINT).
  connections_endpoint = "${replace(aws_apigatewayv2_api.this.api_endpoint, "wss://", "https://")}/${var.stage_name}"

  function_names = {
    connect = "${var.name}-connect"
    ingest  = "${var.name}-ingest"
    fanout  = "${var.name}-fanout"
  }

  # The JWT secret is read from SSM at apply time and handed to connect only when auth is on.
  jwt_environment = var.enable_jwt_auth ? { RIPPLE_JWT_SECRET = data.aws_ssm_parameter.jwt_secret[0].value } : {}

  # Route keys (the `action` of a client frame) and the function behind each.
  connect_route_keys = ["$connect", "$disconnect"]
  ingest_route_keys  = ["join", "leave", "position", "message", "$default"]

  # Item kinds (attribute `kind`) the fanout acts on; see the filter criteria in lambda.tf.
  fanout_upsert_kinds = ["connection", "member", "position", "message"]
  fanout_remove_kinds = ["member"]
}

data "aws_ssm_parameter" "jwt_secret" {
  count = var.enable_jwt_auth ? 1 : 0

  name            = var.jwt_secret_ssm_parameter_name
  with_decryption = true
}
