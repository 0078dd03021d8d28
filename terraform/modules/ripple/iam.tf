# One role per function, each allowed exactly what its code calls: contract.json, which the code
# writes (common/src/deploy.rs), lists the actions, and tests/tests/terraform.rs checks this file
# against it. They are written out here, not read from it, so that checkov can check the policies.

locals {
  # DynamoDB actions are granted on the table and its indexes only (never a Scan, never "*").
  table_resources = [aws_dynamodb_table.this.arn, "${aws_dynamodb_table.this.arn}/index/*"]
}

data "aws_iam_policy_document" "lambda_assume" {
  statement {
    sid     = "LambdaAssume"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

# --- connect ----------------------------------------------------------------------------------

resource "aws_iam_role" "connect" {
  name               = local.function_names.connect
  assume_role_policy = data.aws_iam_policy_document.lambda_assume.json
  tags               = var.tags
}

data "aws_iam_policy_document" "connect" {
  statement {
    sid       = "Table"
    actions   = ["dynamodb:PutItem", "dynamodb:DeleteItem", "dynamodb:Query", "dynamodb:UpdateItem", "dynamodb:BatchWriteItem"]
    resources = local.table_resources
  }

  statement {
    sid       = "Logs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.lambda["connect"].arn}:*"]
  }

  # HS256 auth: read the one SecureString parameter holding the secret, at cold start …
  dynamic "statement" {
    for_each = var.enable_jwt_auth ? [1] : []
    content {
      sid       = "JwtSecretParameter"
      actions   = ["ssm:GetParameter"]
      resources = [local.jwt_secret_parameter_arn]
    }
  }

  # … and decrypt it, only through SSM and only for that parameter.
  dynamic "statement" {
    for_each = var.enable_jwt_auth ? [1] : []
    content {
      sid       = "JwtSecretDecrypt"
      actions   = ["kms:Decrypt"]
      resources = [local.jwt_secret_kms_key_arn]

      condition {
        test     = "StringEquals"
        variable = "kms:ViaService"
        values   = ["ssm.${data.aws_region.current.name}.amazonaws.com"]
      }

      condition {
        test     = "StringEquals"
        variable = "kms:EncryptionContext:PARAMETER_ARN"
        values   = [local.jwt_secret_parameter_arn]
      }
    }
  }
}

resource "aws_iam_role_policy" "connect" {
  name   = "ripple-connect"
  role   = aws_iam_role.connect.id
  policy = data.aws_iam_policy_document.connect.json
}

# --- ingest -----------------------------------------------------------------------------------

resource "aws_iam_role" "ingest" {
  name               = local.function_names.ingest
  assume_role_policy = data.aws_iam_policy_document.lambda_assume.json
  tags               = var.tags
}

data "aws_iam_policy_document" "ingest" {
  statement {
    sid       = "Table"
    actions   = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:DeleteItem", "dynamodb:Query", "dynamodb:UpdateItem", "dynamodb:ConditionCheckItem"]
    resources = local.table_resources
  }

  statement {
    sid       = "Logs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.lambda["ingest"].arn}:*"]
  }
}

resource "aws_iam_role_policy" "ingest" {
  name   = "ripple-ingest"
  role   = aws_iam_role.ingest.id
  policy = data.aws_iam_policy_document.ingest.json
}

# --- fanout -----------------------------------------------------------------------------------

resource "aws_iam_role" "fanout" {
  name               = local.function_names.fanout
  assume_role_policy = data.aws_iam_policy_document.lambda_assume.json
  tags               = var.tags
}

data "aws_iam_policy_document" "fanout" {
  statement {
    sid       = "Table"
    actions   = ["dynamodb:Query", "dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:PutItem", "dynamodb:ConditionCheckItem", "dynamodb:BatchGetItem", "dynamodb:BatchWriteItem"]
    resources = local.table_resources
  }

  # The event source mapping polls the stream with the function's role (ListStreams is on the
  # table's streams, the others on its stream).
  statement {
    sid       = "Stream"
    actions   = ["dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator", "dynamodb:ListStreams"]
    resources = [aws_dynamodb_table.this.stream_arn, "${aws_dynamodb_table.this.arn}/stream/*"]
  }

  # POST (send), GET (connection info) and DELETE (close) on this API's stage only.
  statement {
    sid     = "Connections"
    actions = ["execute-api:ManageConnections"]
    resources = [
      "${aws_apigatewayv2_stage.this.execution_arn}/POST/@connections/*",
      "${aws_apigatewayv2_stage.this.execution_arn}/GET/@connections/*",
      "${aws_apigatewayv2_stage.this.execution_arn}/DELETE/@connections/*",
    ]
  }

  # The mapping's on-failure destination is written with the function's role.
  statement {
    sid       = "FailureQueue"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.fanout_failures.arn]
  }

  dynamic "statement" {
    for_each = var.kms_key_arn == null ? [] : [var.kms_key_arn]

    content {
      sid       = "FailureQueueKey"
      actions   = ["kms:GenerateDataKey", "kms:Decrypt"]
      resources = [statement.value]
    }
  }

  statement {
    sid       = "Logs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.lambda["fanout"].arn}:*"]
  }
}

resource "aws_iam_role_policy" "fanout" {
  name   = "ripple-fanout"
  role   = aws_iam_role.fanout.id
  policy = data.aws_iam_policy_document.fanout.json
}
