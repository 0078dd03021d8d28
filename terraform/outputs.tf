output "websocket_url" {
  description = "wss:// URL clients connect to, e.g. websocat \"$(terraform output -raw websocket_url)?user=alice&channel=arena\"."
  value       = module.ripple.websocket_url
}

output "connections_endpoint" {
  description = "The @connections (management API) endpoint: https://{api_id}.execute-api.{region}.amazonaws.com/{stage}."
  value       = module.ripple.connections_endpoint
}

output "api_id" {
  description = "API Gateway WebSocket API id."
  value       = module.ripple.api_id
}

output "table_name" {
  description = "DynamoDB table name."
  value       = module.ripple.table_name
}

output "function_names" {
  description = "Lambda function names by package."
  value       = module.ripple.function_names
}

output "log_group_names" {
  description = "CloudWatch log groups (aws logs tail <name> --follow)."
  value       = module.ripple.log_group_names
}

output "fanout_failure_queue_url" {
  description = "SQS queue receiving the metadata of stream batches fanout gave up on."
  value       = module.ripple.fanout_failure_queue_url
}

output "dashboard_name" {
  description = "CloudWatch dashboard of the pipeline (CloudWatch console > Dashboards)."
  value       = module.ripple.dashboard_name
}

output "alarm_names" {
  description = "CloudWatch alarms by what they watch (README.md, Operating, says what to do when one fires)."
  value       = module.ripple.alarm_names
}

output "architecture" {
  description = "The functions' instruction set (the build record's unless set)."
  value       = module.ripple.architecture
}

output "custom_domain" {
  description = "With domain_name: its wss:// URL and the DNS target (CNAME or alias) to point it at."
  value       = module.ripple.custom_domain
}
