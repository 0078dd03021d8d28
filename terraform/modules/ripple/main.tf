# Ripple on AWS: API Gateway WebSocket API -> connect / ingest Lambdas -> one DynamoDB table ->
# its stream -> fanout Lambda -> API Gateway @connections.
#
# Files: dynamodb.tf (table), lambda.tf (functions, log groups, stream mapping, failure queue),
# iam.tf (one least-privilege role per function), apigateway.tf (API, routes, stage, access logs).

data "aws_partition" "current" {}

locals {
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
  fanout_upsert_kinds = ["connection", "member", "roster", "position", "message"]
  fanout_remove_kinds = ["roster"]
}

data "aws_ssm_parameter" "jwt_secret" {
  count = var.enable_jwt_auth ? 1 : 0

  name            = var.jwt_secret_ssm_parameter_name
  with_decryption = true
}
