# Ripple on AWS: API Gateway WebSocket API -> connect / ingest Lambdas -> one DynamoDB table ->
# its stream -> fanout Lambda -> API Gateway @connections.
#
# Files: dynamodb.tf (table), lambda.tf (functions, log groups, stream mapping, failure queue),
# iam.tf (one least-privilege role per function), apigateway.tf (API, routes, stage, access logs).

data "aws_partition" "current" {}

locals {
  # What the code needs from this deployment, written by the code (common/src/deploy.rs
  # `contract()`; tests/tests/terraform.rs keeps it current): per function the environment
  # variables, IAM actions and metric names, and the item kinds fanout acts on. The IAM actions
  # stay written out in iam.tf (a test compares them with this file) so that checkov can read the
  # policy documents.
  contract = jsondecode(file("${path.module}/contract.json"))

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

  # Auth settings of connect. The HS256 secret itself never passes through Terraform: connect gets
  # the parameter's *name* and reads the SecureString at cold start (iam.tf grants exactly that).
  jwt_environment = merge(
    var.enable_jwt_auth ? { RIPPLE_JWT_SECRET_PARAMETER = var.jwt_secret_ssm_parameter_name } : {},
    var.jwks_url == null ? {} : { RIPPLE_JWKS_URL = var.jwks_url },
    var.jwt_issuer == null ? {} : { RIPPLE_JWT_ISSUER = var.jwt_issuer },
    var.jwt_audience == null ? {} : { RIPPLE_JWT_AUDIENCE = var.jwt_audience },
    { RIPPLE_ALLOW_ANONYMOUS = tostring(var.allow_anonymous_users) },
  )

  # The SSM parameter holding the HS256 secret, and the KMS key it is encrypted with.
  jwt_secret_parameter_arn = "arn:${data.aws_partition.current.partition}:ssm:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}:parameter/${trimprefix(var.jwt_secret_ssm_parameter_name, "/")}"
  jwt_secret_kms_key_arn   = var.jwt_secret_kms_key_arn != null ? var.jwt_secret_kms_key_arn : one(data.aws_kms_alias.ssm[*].target_key_arn)

  # Route keys (the `action` of a client frame) and the function behind each.
  connect_route_keys = ["$connect", "$disconnect"]
  ingest_route_keys  = ["join", "leave", "position", "message", "$default"]

  # Item kinds (attribute `kind`) the fanout acts on; see the filter criteria in lambda.tf.
  fanout_upsert_kinds = local.contract.fanout_upsert_kinds
  fanout_remove_kinds = local.contract.fanout_remove_kinds
}

data "aws_caller_identity" "current" {}

# The AWS managed key of SSM, which encrypts SecureString parameters unless another key is given.
data "aws_kms_alias" "ssm" {
  count = var.enable_jwt_auth && var.jwt_secret_kms_key_arn == null ? 1 : 0

  name = "alias/aws/ssm"
}
