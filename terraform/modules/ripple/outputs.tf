output "websocket_url" {
  description = "wss:// URL clients connect to (add ?channel=...&user=... or &token=...)."
  value       = aws_apigatewayv2_stage.this.invoke_url
}

output "connections_endpoint" {
  description = "The @connections (management API) endpoint: https://{api_id}.execute-api.{region}.amazonaws.com/{stage}."
  value       = "${replace(aws_apigatewayv2_api.this.api_endpoint, "wss://", "https://")}/${aws_apigatewayv2_stage.this.name}"
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
    { api_access = aws_cloudwatch_log_group.api_access.name },
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
