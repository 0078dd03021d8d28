output "websocket_url" {
  description = "wss:// URL clients connect to (add ?channel=...&user=... or &token=...)."
  value       = aws_apigatewayv2_stage.this.invoke_url
}

output "connections_endpoint" {
  description = "The @connections (management API) endpoint: https://{api_id}.execute-api.{region}.amazonaws.com/{stage}."
  value       = local.connections_endpoint
}

output "api_id" {
  description = "API Gateway WebSocket API id."
  value       = aws_apigatewayv2_api.this.id
}

output "table_name" {
  description = "DynamoDB table name."
  value       = aws_dynamodb_table.this.name
}

output "table_stream_arn" {
  description = "ARN of the table's stream."
  value       = aws_dynamodb_table.this.stream_arn
}

output "function_names" {
  description = "Lambda function names by package (connect, ingest, fanout)."
  value = {
    connect = aws_lambda_function.connect.function_name
    ingest  = aws_lambda_function.ingest.function_name
    fanout  = aws_lambda_function.fanout.function_name
  }
}

output "log_group_names" {
  description = "CloudWatch log groups: one per function plus the API's access log."
  value = merge(
    { for k, g in aws_cloudwatch_log_group.lambda : k => g.name },
    { for g in aws_cloudwatch_log_group.api_access : "api_access" => g.name },
  )
}

output "fanout_failure_queue_url" {
  description = "SQS queue receiving the metadata of stream batches fanout gave up on."
  value       = aws_sqs_queue.fanout_failures.url
}

output "dashboard_name" {
  description = "CloudWatch dashboard of the pipeline (CloudWatch console > Dashboards)."
  value       = aws_cloudwatch_dashboard.this.dashboard_name
}

output "alarm_names" {
  description = "CloudWatch alarms by what they watch."
  value = {
    fanout_iterator_age     = aws_cloudwatch_metric_alarm.fanout_iterator_age.alarm_name
    fanout_failed_records   = aws_cloudwatch_metric_alarm.fanout_failed_records.alarm_name
    fanout_throttled_posts  = aws_cloudwatch_metric_alarm.fanout_throttled_posts.alarm_name
    fanout_batches_given_up = aws_cloudwatch_metric_alarm.fanout_batches_given_up.alarm_name
  }
}

output "architecture" {
  description = "The functions' instruction set (from the build record unless set)."
  value       = local.architecture
}

output "custom_domain" {
  description = "With domain_name set: the wss:// URL on it, and the target a DNS record must point at (CNAME, or an alias A record with the hosted zone id). null otherwise."
  value = var.domain_name == null ? null : {
    websocket_url      = "wss://${var.domain_name}"
    target_domain_name = aws_apigatewayv2_domain_name.this[0].domain_name_configuration[0].target_domain_name
    hosted_zone_id     = aws_apigatewayv2_domain_name.this[0].domain_name_configuration[0].hosted_zone_id
  }
}
