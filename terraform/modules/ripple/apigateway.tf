# The WebSocket API. A client frame's `action` picks the route; $connect/$disconnect go to
# connect, everything else to ingest. Ingest routes have a $default route response so that the
# body ingest returns (an error frame) is sent back to the sender.

resource "aws_apigatewayv2_api" "this" {
  name                       = var.name
  description                = "Ripple real-time fan-out"
  protocol_type              = "WEBSOCKET"
  route_selection_expression = "$request.body.action"

  tags = var.tags
}

resource "aws_apigatewayv2_integration" "connect" {
  api_id             = aws_apigatewayv2_api.this.id
  integration_type   = "AWS_PROXY"
  integration_method = "POST"
  integration_uri    = aws_lambda_function.connect.invoke_arn
}

resource "aws_apigatewayv2_integration" "ingest" {
  api_id             = aws_apigatewayv2_api.this.id
  integration_type   = "AWS_PROXY"
  integration_method = "POST"
  integration_uri    = aws_lambda_function.ingest.invoke_arn
}

resource "aws_apigatewayv2_route" "connect" {
  #checkov:skip=CKV_AWS_309:Authentication happens in the connect function (HS256 JWT in the query string or Sec-WebSocket-Protocol when enable_jwt_auth is on); later frames ride the authenticated connection.
  for_each = toset(local.connect_route_keys)

  api_id             = aws_apigatewayv2_api.this.id
  route_key          = each.value
  authorization_type = "NONE"
  target             = "integrations/${aws_apigatewayv2_integration.connect.id}"
}

resource "aws_apigatewayv2_route" "ingest" {
  #checkov:skip=CKV_AWS_309:Only $connect can carry an authorizer on a WebSocket API; these routes ride a connection authenticated at $connect.
  for_each = toset(local.ingest_route_keys)

  api_id                              = aws_apigatewayv2_api.this.id
  route_key                           = each.value
  authorization_type                  = "NONE"
  target                              = "integrations/${aws_apigatewayv2_integration.ingest.id}"
  route_response_selection_expression = "$default"
}

resource "aws_apigatewayv2_route_response" "ingest" {
  for_each = aws_apigatewayv2_route.ingest

  api_id             = aws_apigatewayv2_api.this.id
  route_id           = each.value.id
  route_response_key = "$default"
}

# A new deployment whenever routes, integrations or route responses change.
resource "aws_apigatewayv2_deployment" "this" {
  api_id      = aws_apigatewayv2_api.this.id
  description = "Ripple routes"

  triggers = {
    redeployment = sha1(jsonencode([
      [for r in aws_apigatewayv2_route.connect : [r.id, r.route_key, r.target]],
      [for r in aws_apigatewayv2_route.ingest : [r.id, r.route_key, r.target]],
      [for r in aws_apigatewayv2_route_response.ingest : r.id],
      aws_apigatewayv2_integration.connect.integration_uri,
      aws_apigatewayv2_integration.ingest.integration_uri,
    ]))
  }

  lifecycle {
    create_before_destroy = true
  }

  depends_on = [
    aws_apigatewayv2_route.connect,
    aws_apigatewayv2_route.ingest,
    aws_apigatewayv2_route_response.ingest,
  ]
}

resource "aws_cloudwatch_log_group" "api_access" {
  #checkov:skip=CKV_AWS_338:Retention is the operator's choice (var.log_retention_days, 14 days by default); these are operational logs, not audit records.
  count = var.enable_access_logs ? 1 : 0

  name              = "/aws/apigateway/${var.name}-access"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn

  tags = var.tags
}

resource "aws_apigatewayv2_stage" "this" {
  #checkov:skip=CKV2_AWS_51:WebSocket APIs do not support mutual TLS; clients (browsers, game engines) authenticate with a JWT at $connect.
  #checkov:skip=CKV_AWS_76:Access logs are opt-in (enable_access_logs): they need the region-wide API Gateway CloudWatch role, which this module does not take over unless asked (manage_api_gateway_account). The functions' logs and metrics are always on.
  api_id        = aws_apigatewayv2_api.this.id
  name          = var.stage_name
  deployment_id = aws_apigatewayv2_deployment.this.id

  default_route_settings {
    throttling_rate_limit  = var.throttling_rate_limit
    throttling_burst_limit = var.throttling_burst_limit
    data_trace_enabled     = false
  }

  dynamic "access_log_settings" {
    for_each = aws_cloudwatch_log_group.api_access
    content {
      destination_arn = access_log_settings.value.arn
      format = jsonencode({
        requestId        = "$context.requestId"
        requestTime      = "$context.requestTime"
        eventType        = "$context.eventType"
        routeKey         = "$context.routeKey"
        connectionId     = "$context.connectionId"
        status           = "$context.status"
        sourceIp         = "$context.identity.sourceIp"
        integrationError = "$context.integrationErrorMessage"
        integrationMs    = "$context.integrationLatency"
        error            = "$context.error.message"
      })
    }
  }

  tags = var.tags

  # Access logging needs the account-level CloudWatch role to be registered first (when managed here).
  depends_on = [aws_api_gateway_account.this]
}

# Optional custom domain (domain_name + certificate_arn): the stage served at wss://<domain_name>/.
resource "aws_apigatewayv2_domain_name" "this" {
  count = var.domain_name == null ? 0 : 1

  domain_name = var.domain_name

  domain_name_configuration {
    certificate_arn = var.certificate_arn
    endpoint_type   = "REGIONAL"
    security_policy = "TLS_1_2"
  }

  tags = var.tags

  lifecycle {
    precondition {
      condition     = var.certificate_arn != null
      error_message = "domain_name needs certificate_arn: an ACM certificate for it in the API's region."
    }
  }
}

resource "aws_apigatewayv2_api_mapping" "this" {
  count = var.domain_name == null ? 0 : 1

  api_id      = aws_apigatewayv2_api.this.id
  domain_name = aws_apigatewayv2_domain_name.this[0].id
  stage       = aws_apigatewayv2_stage.this.id
}

resource "aws_lambda_permission" "connect" {
  statement_id  = "AllowApiGatewayInvoke"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.connect.function_name
  principal     = "apigateway.amazonaws.com"
  source_arn    = "${aws_apigatewayv2_stage.this.execution_arn}/*"
}

resource "aws_lambda_permission" "ingest" {
  statement_id  = "AllowApiGatewayInvoke"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.ingest.function_name
  principal     = "apigateway.amazonaws.com"
  source_arn    = "${aws_apigatewayv2_stage.this.execution_arn}/*"
}

# API Gateway writes access logs with an account-wide (per region) role. Opt-in
# (manage_api_gateway_account): aws_api_gateway_account replaces whatever role the account already
# has in this region, and after destroy it would point at the deleted role.
data "aws_iam_policy_document" "apigateway_assume" {
  statement {
    sid     = "ApiGatewayAssume"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["apigateway.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "apigateway_cloudwatch" {
  count = var.manage_api_gateway_account ? 1 : 0

  name               = "${var.name}-apigateway-cloudwatch"
  assume_role_policy = data.aws_iam_policy_document.apigateway_assume.json
  tags               = var.tags
}

resource "aws_iam_role_policy_attachment" "apigateway_cloudwatch" {
  count = var.manage_api_gateway_account ? 1 : 0

  role       = aws_iam_role.apigateway_cloudwatch[0].name
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs"
}

resource "aws_api_gateway_account" "this" {
  count = var.manage_api_gateway_account ? 1 : 0

  cloudwatch_role_arn = aws_iam_role.apigateway_cloudwatch[0].arn

  depends_on = [aws_iam_role_policy_attachment.apigateway_cloudwatch]
}
