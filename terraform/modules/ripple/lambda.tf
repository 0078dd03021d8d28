# The three functions, built by scripts/package.sh (cargo lambda build --release --output-format zip)
# into <lambda_artifacts_dir>/<package>/bootstrap.zip, with the build record (build.json) saying for
# which architecture. Each function's environment is exactly what its code reads
# (common/src/deploy.rs); fanout gets RIPPLE_CONNECTIONS_ENDPOINT, the stage's execute-api
# @connections endpoint, so posts work whatever domain the clients connected through.

resource "aws_cloudwatch_log_group" "lambda" {
  #checkov:skip=CKV_AWS_338:Retention is the operator's choice (var.log_retention_days, 14 days by default); these are operational logs, not audit records.
  for_each = local.function_names

  name              = "/aws/lambda/${each.value}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn

  tags = var.tags
}

resource "aws_lambda_function" "connect" {
  #checkov:skip=CKV_AWS_116:Invoked synchronously by API Gateway only; a DLQ applies to asynchronous invocations.
  #checkov:skip=CKV_AWS_117:Calls only DynamoDB over the public AWS endpoints; a VPC would add NAT or endpoint costs and no protection.
  #checkov:skip=CKV_AWS_115:Reserved concurrency is left to the account's pool; reserving it fails on new accounts whose quota is 10.
  #checkov:skip=CKV_AWS_272:Zips are built locally by cargo-lambda and uploaded directly; code signing needs AWS Signer and S3-hosted artifacts.
  #checkov:skip=CKV_AWS_50:X-Ray is not used by the code; tracing spans go to the function's logs.
  function_name = local.function_names.connect
  description   = "Ripple $connect / $disconnect"
  role          = aws_iam_role.connect.arn
  runtime       = "provided.al2023"
  handler       = "bootstrap"
  architectures = [local.architecture]
  filename      = "${var.lambda_artifacts_dir}/connect/bootstrap.zip"
  memory_size   = var.connect_memory_mb
  timeout       = var.connect_timeout_seconds
  kms_key_arn   = var.kms_key_arn

  source_code_hash = filebase64sha256("${var.lambda_artifacts_dir}/connect/bootstrap.zip")

  # JSON log format, so that Lambda can leave out its own START/END/REPORT lines (INFO events) at
  # system log level WARN (Lambda developer guide, "Log-level filtering"): ~0.26 KB per invocation
  # at one ingest invocation per client frame. The functions print JSON lines already (tracing's
  # JSON subscriber, EMF metrics), which Lambda passes on as they are ("Configuring JSON and plain
  # text log formats": it does not double-encode JSON logs); application_log_level TRACE leaves
  # their filtering to RUST_LOG.
  logging_config {
    log_format            = "JSON"
    system_log_level      = var.lambda_system_log_level
    application_log_level = "TRACE"
  }

  environment {
    variables = merge(
      {
        RIPPLE_TABLE                   = aws_dynamodb_table.this.name
        RIPPLE_CONNECTION_TTL_SECS     = tostring(var.connection_ttl_seconds)
        RIPPLE_RESUME_WINDOW_SECS      = tostring(var.resume_window_seconds)
        RIPPLE_MAX_MEMBERS_PER_CHANNEL = tostring(var.max_members_per_channel)
        RUST_LOG                       = var.log_level
      },
      local.jwt_environment,
    )
  }

  tags = var.tags

  lifecycle {
    precondition {
      condition     = var.enable_jwt_auth || var.jwks_url != null || var.allow_anonymous_users
      error_message = "connect needs a way to check tokens: set enable_jwt_auth = true (HS256 secret in SSM) or jwks_url (RS256/ES256), or, for development only, allow_anonymous_users = true to trust ?user=."
    }
    precondition {
      condition     = var.architecture == null || var.architecture == var.build_record.architecture
      error_message = "architecture = ${coalesce(var.architecture, "null")}, but the zips in ${var.lambda_artifacts_dir} were built for ${var.build_record.architecture} (build.json). Rebuild them (bash scripts/package.sh, add --arm64 for arm64) or drop the architecture variable."
    }
    precondition {
      condition     = filebase64sha256("${var.lambda_artifacts_dir}/connect/bootstrap.zip") == var.build_record.functions["connect"].base64sha256
      error_message = "${var.lambda_artifacts_dir}/connect/bootstrap.zip is not the zip build.json records (built apart from scripts/package.sh?). Rebuild with bash scripts/package.sh."
    }
  }

  depends_on = [aws_cloudwatch_log_group.lambda, aws_iam_role_policy.connect]
}

resource "aws_lambda_function" "ingest" {
  #checkov:skip=CKV_AWS_116:Invoked synchronously by API Gateway only; a DLQ applies to asynchronous invocations.
  #checkov:skip=CKV_AWS_117:Calls only DynamoDB over the public AWS endpoints; a VPC would add NAT or endpoint costs and no protection.
  #checkov:skip=CKV_AWS_115:Reserved concurrency is left to the account's pool; reserving it fails on new accounts whose quota is 10.
  #checkov:skip=CKV_AWS_272:Zips are built locally by cargo-lambda and uploaded directly; code signing needs AWS Signer and S3-hosted artifacts.
  #checkov:skip=CKV_AWS_50:X-Ray is not used by the code; tracing spans go to the function's logs.
  function_name = local.function_names.ingest
  description   = "Ripple join / leave / position / message / $default"
  role          = aws_iam_role.ingest.arn
  runtime       = "provided.al2023"
  handler       = "bootstrap"
  architectures = [local.architecture]
  filename      = "${var.lambda_artifacts_dir}/ingest/bootstrap.zip"
  memory_size   = var.ingest_memory_mb
  timeout       = var.ingest_timeout_seconds
  kms_key_arn   = var.kms_key_arn

  source_code_hash = filebase64sha256("${var.lambda_artifacts_dir}/ingest/bootstrap.zip")

  # JSON log format, so that Lambda can leave out its own START/END/REPORT lines (INFO events) at
  # system log level WARN (Lambda developer guide, "Log-level filtering"): ~0.26 KB per invocation
  # at one ingest invocation per client frame. The functions print JSON lines already (tracing's
  # JSON subscriber, EMF metrics), which Lambda passes on as they are ("Configuring JSON and plain
  # text log formats": it does not double-encode JSON logs); application_log_level TRACE leaves
  # their filtering to RUST_LOG.
  logging_config {
    log_format            = "JSON"
    system_log_level      = var.lambda_system_log_level
    application_log_level = "TRACE"
  }

  environment {
    variables = {
      RIPPLE_TABLE                   = aws_dynamodb_table.this.name
      RIPPLE_POSITION_TTL_SECS       = tostring(var.position_ttl_seconds)
      RIPPLE_MESSAGE_TTL_SECS        = tostring(var.message_ttl_seconds)
      RIPPLE_POSITION_RATE           = tostring(var.position_rate)
      RIPPLE_MESSAGE_RATE            = tostring(var.message_rate)
      RIPPLE_MAX_MEMBERS_PER_CHANNEL = tostring(var.max_members_per_channel)
      RUST_LOG                       = var.log_level
    }
  }

  tags = var.tags

  lifecycle {
    precondition {
      condition     = var.architecture == null || var.architecture == var.build_record.architecture
      error_message = "architecture = ${coalesce(var.architecture, "null")}, but the zips in ${var.lambda_artifacts_dir} were built for ${var.build_record.architecture} (build.json). Rebuild them (bash scripts/package.sh, add --arm64 for arm64) or drop the architecture variable."
    }
    precondition {
      condition     = filebase64sha256("${var.lambda_artifacts_dir}/ingest/bootstrap.zip") == var.build_record.functions["ingest"].base64sha256
      error_message = "${var.lambda_artifacts_dir}/ingest/bootstrap.zip is not the zip build.json records (built apart from scripts/package.sh?). Rebuild with bash scripts/package.sh."
    }
  }

  depends_on = [aws_cloudwatch_log_group.lambda, aws_iam_role_policy.ingest]
}

resource "aws_lambda_function" "fanout" {
  #checkov:skip=CKV_AWS_116:Invoked by the stream event source mapping, whose own on-failure destination (the SQS queue below) is the DLQ.
  #checkov:skip=CKV_AWS_117:Calls only DynamoDB and the execute-api @connections endpoint over the public AWS endpoints; a VPC would add NAT or endpoint costs and no protection.
  #checkov:skip=CKV_AWS_115:Concurrency is bounded by the stream: shards x parallelization factor; reserving it fails on new accounts whose quota is 10.
  #checkov:skip=CKV_AWS_272:Zips are built locally by cargo-lambda and uploaded directly; code signing needs AWS Signer and S3-hosted artifacts.
  #checkov:skip=CKV_AWS_50:X-Ray is not used by the code; tracing spans go to the function's logs.
  function_name = local.function_names.fanout
  description   = "Ripple DynamoDB stream -> @connections fan-out"
  role          = aws_iam_role.fanout.arn
  runtime       = "provided.al2023"
  handler       = "bootstrap"
  architectures = [local.architecture]
  filename      = "${var.lambda_artifacts_dir}/fanout/bootstrap.zip"
  memory_size   = var.fanout_memory_mb
  timeout       = var.fanout_timeout_seconds
  kms_key_arn   = var.kms_key_arn

  source_code_hash = filebase64sha256("${var.lambda_artifacts_dir}/fanout/bootstrap.zip")

  # JSON log format, so that Lambda can leave out its own START/END/REPORT lines (INFO events) at
  # system log level WARN (Lambda developer guide, "Log-level filtering"): ~0.26 KB per invocation
  # at one ingest invocation per client frame. The functions print JSON lines already (tracing's
  # JSON subscriber, EMF metrics), which Lambda passes on as they are ("Configuring JSON and plain
  # text log formats": it does not double-encode JSON logs); application_log_level TRACE leaves
  # their filtering to RUST_LOG.
  logging_config {
    log_format            = "JSON"
    system_log_level      = var.lambda_system_log_level
    application_log_level = "TRACE"
  }

  environment {
    variables = {
      RIPPLE_TABLE                = aws_dynamodb_table.this.name
      RIPPLE_CONNECTIONS_ENDPOINT = local.connections_endpoint
      RIPPLE_MAX_IN_FLIGHT        = tostring(var.fanout_max_in_flight)
      RIPPLE_POSTS_PER_SECOND     = tostring(var.fanout_posts_per_second)
      RIPPLE_MEMBER_CACHE_MS      = tostring(var.fanout_member_cache_ms)
      RUST_LOG                    = var.log_level
    }
  }

  tags = var.tags

  lifecycle {
    precondition {
      condition     = var.architecture == null || var.architecture == var.build_record.architecture
      error_message = "architecture = ${coalesce(var.architecture, "null")}, but the zips in ${var.lambda_artifacts_dir} were built for ${var.build_record.architecture} (build.json). Rebuild them (bash scripts/package.sh, add --arm64 for arm64) or drop the architecture variable."
    }
    precondition {
      condition     = filebase64sha256("${var.lambda_artifacts_dir}/fanout/bootstrap.zip") == var.build_record.functions["fanout"].base64sha256
      error_message = "${var.lambda_artifacts_dir}/fanout/bootstrap.zip is not the zip build.json records (built apart from scripts/package.sh?). Rebuild with bash scripts/package.sh."
    }
  }

  depends_on = [aws_cloudwatch_log_group.lambda, aws_iam_role_policy.fanout]
}

# Where the event source mapping sends the metadata of batches it gave up on (retries or record
# age exhausted); inspect with `aws sqs receive-message`.
resource "aws_sqs_queue" "fanout_failures" {
  name                      = "${var.name}-fanout-failures"
  message_retention_seconds = 1209600
  sqs_managed_sse_enabled   = var.kms_key_arn == null ? true : null
  kms_master_key_id         = var.kms_key_arn

  tags = var.tags
}

resource "aws_lambda_event_source_mapping" "fanout" {
  event_source_arn  = aws_dynamodb_table.this.stream_arn
  function_name     = aws_lambda_function.fanout.arn
  starting_position = "LATEST"

  batch_size                         = var.fanout_batch_size
  maximum_batching_window_in_seconds = var.fanout_maximum_batching_window_seconds
  parallelization_factor             = var.fanout_parallelization_factor
  bisect_batch_on_function_error     = var.fanout_bisect_batch_on_function_error
  maximum_retry_attempts             = var.fanout_maximum_retry_attempts
  maximum_record_age_in_seconds      = var.fanout_maximum_record_age_seconds

  # fanout returns batchItemFailures with the first failed sequence number.
  function_response_types = ["ReportBatchItemFailures"]

  destination_config {
    on_failure {
      destination_arn = aws_sqs_queue.fanout_failures.arn
    }
  }

  # Only records fanout acts on invoke it (filters are OR'ed): new or changed connections,
  # memberships, roster entries, positions and messages, and removed roster entries (leave,
  # disconnect, TTL). The kinds are common/src/deploy.rs's FANOUT_*_KINDS (a test compares).
  filter_criteria {
    filter {
      pattern = jsonencode({
        eventName = ["INSERT", "MODIFY"]
        dynamodb = {
          NewImage = {
            kind = { S = local.fanout_upsert_kinds }
          }
        }
      })
    }

    filter {
      pattern = jsonencode({
        eventName = ["REMOVE"]
        dynamodb = {
          OldImage = {
            kind = { S = local.fanout_remove_kinds }
          }
        }
      })
    }
  }

  depends_on = [aws_iam_role_policy.fanout]
}
