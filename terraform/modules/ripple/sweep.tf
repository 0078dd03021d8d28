# The stale-connection sweep: $disconnect is best-effort, so on a schedule EventBridge invokes the
# fanout function with {"ripple":"sweep"}. Fanout already holds what the sweep needs (Query on the
# table's index, BatchWriteItem, and GET/DELETE on @connections); see fanout/src/sweep.rs.

resource "aws_cloudwatch_event_rule" "sweep" {
  name                = "${var.name}-sweep"
  description         = "Ripple: delete connections whose sockets are gone"
  schedule_expression = "rate(${var.sweep_interval_minutes} minutes)"
  tags                = var.tags
}

resource "aws_cloudwatch_event_target" "sweep" {
  rule  = aws_cloudwatch_event_rule.sweep.name
  arn   = aws_lambda_function.fanout.arn
  input = jsonencode({ ripple = "sweep" })
}

resource "aws_lambda_permission" "sweep" {
  statement_id  = "AllowEventBridgeSweep"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.fanout.function_name
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.sweep.arn
}
