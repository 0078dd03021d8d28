# What an operator watches: a CloudWatch dashboard and alarms over the metrics the functions
# print in Embedded Metric Format (namespace Ripple, dimension Function = the deployed function
# name; common/src/emf.rs lists them) plus the fanout's stream IteratorAge. README.md
# "Operating" says what each metric means and what to do when an alarm fires.
# tests/tests/terraform.rs checks that every metric here is one the code emits.

data "aws_region" "current" {}

locals {
  metrics_namespace     = "Ripple"
  connect_function_name = aws_lambda_function.connect.function_name
  ingest_function_name  = aws_lambda_function.ingest.function_name
  fanout_function_name  = aws_lambda_function.fanout.function_name

  # No topic, no actions: the alarms still show their state on the dashboard and in the console.
  alarm_actions = var.alarm_sns_topic_arn == null ? [] : [var.alarm_sns_topic_arn]

  # `name` is deprecated (not removed) in AWS provider 6 in favour of `region`; it works in 5 and 6.
  dashboard_region = data.aws_region.current.name

  dashboard_widgets = [
    {
      type   = "metric"
      x      = 0
      y      = 0
      width  = 8
      height = 6
      properties = {
        title  = "Delivery (per minute)"
        region = local.dashboard_region
        view   = "timeSeries"
        period = 60
        stat   = "Sum"
        metrics = [
          [local.metrics_namespace, "EventsDelivered", "Function", local.fanout_function_name, { label = "events delivered" }],
          [local.metrics_namespace, "Posts", "Function", local.fanout_function_name, { label = "@connections posts" }],
          [local.metrics_namespace, "BilledMessages", "Function", local.fanout_function_name, { label = "billed messages (32 KB units)" }],
          [local.metrics_namespace, "RecordsIn", "Function", local.fanout_function_name, { label = "stream records in" }],
        ]
      }
    },
    {
      type   = "metric"
      x      = 8
      y      = 0
      width  = 8
      height = 6
      properties = {
        title  = "Write -> post lag (ms)"
        region = local.dashboard_region
        view   = "timeSeries"
        period = 60
        metrics = [
          [local.metrics_namespace, "WriteToPostLagMs", "Function", local.fanout_function_name, { stat = "Average", label = "average" }],
          [local.metrics_namespace, "WriteToPostLagMs", "Function", local.fanout_function_name, { stat = "p99", label = "p99 of batch averages" }],
          [local.metrics_namespace, "WriteToPostLagMaxMs", "Function", local.fanout_function_name, { stat = "Maximum", label = "slowest event" }],
        ]
      }
    },
    {
      type   = "metric"
      x      = 16
      y      = 0
      width  = 8
      height = 6
      properties = {
        title  = "Stream iterator age (ms)"
        region = local.dashboard_region
        view   = "timeSeries"
        period = 60
        metrics = [
          ["AWS/Lambda", "IteratorAge", "FunctionName", local.fanout_function_name, { stat = "Maximum", label = "fanout iterator age" }],
        ]
        annotations = {
          horizontal = [{ label = "alarm", value = var.alarm_iterator_age_ms }]
        }
      }
    },
    {
      type   = "metric"
      x      = 0
      y      = 6
      width  = 8
      height = 6
      properties = {
        title  = "Throttling and failed posts (per minute)"
        region = local.dashboard_region
        view   = "timeSeries"
        period = 60
        stat   = "Sum"
        metrics = [
          [local.metrics_namespace, "ThrottledPosts", "Function", local.fanout_function_name, { label = "posts answered 429" }],
          [local.metrics_namespace, "Retries", "Function", local.fanout_function_name, { label = "retries" }],
          [local.metrics_namespace, "FailedPosts", "Function", local.fanout_function_name, { label = "frames given up" }],
        ]
      }
    },
    {
      type   = "metric"
      x      = 8
      y      = 6
      width  = 8
      height = 6
      properties = {
        title  = "Stale connections removed (410, per minute)"
        region = local.dashboard_region
        view   = "timeSeries"
        period = 60
        stat   = "Sum"
        metrics = [
          [local.metrics_namespace, "GoneRemoved", "Function", local.fanout_function_name, { label = "gone connections removed" }],
        ]
      }
    },
    {
      type   = "metric"
      x      = 16
      y      = 6
      width  = 8
      height = 6
      properties = {
        title  = "Failed and malformed records (per minute)"
        region = local.dashboard_region
        view   = "timeSeries"
        period = 60
        stat   = "Sum"
        metrics = [
          [local.metrics_namespace, "FailedRecords", "Function", local.fanout_function_name, { label = "batches failed from a record" }],
          [local.metrics_namespace, "MalformedRecords", "Function", local.fanout_function_name, { label = "malformed records skipped" }],
          ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", aws_sqs_queue.fanout_failures.name, { stat = "Maximum", label = "batches given up (failure queue)" }],
        ]
      }
    },
    {
      type   = "metric"
      x      = 0
      y      = 12
      width  = 8
      height = 6
      properties = {
        title  = "Fanout batch duration (ms)"
        region = local.dashboard_region
        view   = "timeSeries"
        period = 60
        metrics = [
          [local.metrics_namespace, "BatchDurationMs", "Function", local.fanout_function_name, { stat = "Average", label = "average" }],
          [local.metrics_namespace, "BatchDurationMs", "Function", local.fanout_function_name, { stat = "p99", label = "p99" }],
          [local.metrics_namespace, "BatchDurationMs", "Function", local.fanout_function_name, { stat = "Maximum", label = "maximum" }],
        ]
      }
    },
    {
      type   = "metric"
      x      = 8
      y      = 12
      width  = 8
      height = 6
      properties = {
        title  = "Client frames (per minute)"
        region = local.dashboard_region
        view   = "timeSeries"
        period = 60
        stat   = "Sum"
        metrics = [
          [local.metrics_namespace, "Accepted", "Function", local.ingest_function_name, { label = "accepted" }],
          [local.metrics_namespace, "Refused", "Function", local.ingest_function_name, { label = "refused" }],
          [local.metrics_namespace, "Failed", "Function", local.ingest_function_name, { label = "failed (500)" }],
        ]
      }
    },
    {
      type   = "metric"
      x      = 16
      y      = 12
      width  = 8
      height = 6
      properties = {
        title  = "Refused frames by error code (per minute)"
        region = local.dashboard_region
        view   = "timeSeries"
        period = 60
        metrics = [
          [{ expression = "SEARCH('{${local.metrics_namespace},Code,Function} Function=\"${local.ingest_function_name}\" MetricName=\"Refused\"', 'Sum', 60)", id = "refused_by_code", label = "" }],
        ]
      }
    },
    {
      type   = "metric"
      x      = 0
      y      = 18
      width  = 8
      height = 6
      properties = {
        title  = "Connections (per minute)"
        region = local.dashboard_region
        view   = "timeSeries"
        period = 60
        stat   = "Sum"
        metrics = [
          [local.metrics_namespace, "Connects", "Function", local.connect_function_name, { label = "connects" }],
          [local.metrics_namespace, "RejectedConnects", "Function", local.connect_function_name, { label = "rejected (400/401)" }],
          [local.metrics_namespace, "Disconnects", "Function", local.connect_function_name, { label = "disconnects" }],
          [local.metrics_namespace, "Failed", "Function", local.connect_function_name, { label = "failed (500)" }],
        ]
      }
    },
    {
      type   = "metric"
      x      = 8
      y      = 18
      width  = 8
      height = 6
      properties = {
        title  = "Lambda errors and throttles (per minute)"
        region = local.dashboard_region
        view   = "timeSeries"
        period = 60
        stat   = "Sum"
        metrics = [
          ["AWS/Lambda", "Errors", "FunctionName", local.fanout_function_name, { label = "fanout errors" }],
          ["AWS/Lambda", "Errors", "FunctionName", local.ingest_function_name, { label = "ingest errors" }],
          ["AWS/Lambda", "Errors", "FunctionName", local.connect_function_name, { label = "connect errors" }],
          ["AWS/Lambda", "Throttles", "FunctionName", local.fanout_function_name, { label = "fanout throttles" }],
          ["AWS/Lambda", "Throttles", "FunctionName", local.ingest_function_name, { label = "ingest throttles" }],
          ["AWS/Lambda", "Throttles", "FunctionName", local.connect_function_name, { label = "connect throttles" }],
        ]
      }
    },
    {
      type   = "alarm"
      x      = 16
      y      = 18
      width  = 8
      height = 6
      properties = {
        title = "Alarms"
        alarms = [
          aws_cloudwatch_metric_alarm.fanout_iterator_age.arn,
          aws_cloudwatch_metric_alarm.fanout_failed_records.arn,
          aws_cloudwatch_metric_alarm.fanout_throttled_posts.arn,
          aws_cloudwatch_metric_alarm.fanout_batches_given_up.arn,
        ]
      }
    },
  ]
}

resource "aws_cloudwatch_dashboard" "this" {
  dashboard_name = var.name
  dashboard_body = jsonencode({ widgets = local.dashboard_widgets })
}

# The fanout is falling behind its stream: updates reach players late, then (past
# fanout_maximum_record_age_seconds) not at all.
resource "aws_cloudwatch_metric_alarm" "fanout_iterator_age" {
  alarm_name          = "${var.name}-fanout-iterator-age"
  alarm_description   = "fanout is behind the table's stream: its oldest record waited more than ${var.alarm_iterator_age_ms} ms for 3 minutes. See README.md, Operating."
  namespace           = "AWS/Lambda"
  metric_name         = "IteratorAge"
  dimensions          = { FunctionName = local.fanout_function_name }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 3
  datapoints_to_alarm = 3
  threshold           = var.alarm_iterator_age_ms
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  actions_enabled     = true
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions

  tags = var.tags
}

# Batches returned batchItemFailures (a channel's members could not be read): Lambda resends
# them, so a single one heals itself; 3 minutes out of 5 is an outage.
resource "aws_cloudwatch_metric_alarm" "fanout_failed_records" {
  alarm_name          = "${var.name}-fanout-failed-records"
  alarm_description   = "fanout could not read channel members (batchItemFailures) in 3 of the last 5 minutes. See README.md, Operating."
  namespace           = local.metrics_namespace
  metric_name         = "FailedRecords"
  dimensions          = { Function = local.fanout_function_name }
  statistic           = "Sum"
  period              = 60
  evaluation_periods  = 5
  datapoints_to_alarm = 3
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  actions_enabled     = true
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions

  tags = var.tags
}

# The share of @connections posts answered 429 (the account's API Gateway bucket, or clients'
# full buffers): a share, so the alarm means the same at any load.
resource "aws_cloudwatch_metric_alarm" "fanout_throttled_posts" {
  alarm_name          = "${var.name}-fanout-throttled-posts"
  alarm_description   = "More than ${var.alarm_throttled_posts_percent}% of fanout's @connections posts were answered 429 in 3 of the last 5 minutes. See README.md, Operating."
  evaluation_periods  = 5
  datapoints_to_alarm = 3
  threshold           = var.alarm_throttled_posts_percent
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  actions_enabled     = true
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions

  metric_query {
    id          = "throttled_share"
    expression  = "IF(posts > 0, 100 * throttled / posts, 0)"
    label       = "posts answered 429 (%)"
    return_data = true
  }

  metric_query {
    id          = "throttled"
    return_data = false

    metric {
      namespace   = local.metrics_namespace
      metric_name = "ThrottledPosts"
      dimensions  = { Function = local.fanout_function_name }
      period      = 60
      stat        = "Sum"
    }
  }

  metric_query {
    id          = "posts"
    return_data = false

    metric {
      namespace   = local.metrics_namespace
      metric_name = "Posts"
      dimensions  = { Function = local.fanout_function_name }
      period      = 60
      stat        = "Sum"
    }
  }

  tags = var.tags
}

# The event source mapping gave up on a batch (retries or record age exhausted) and sent its
# metadata to the failure queue: those updates never reached anyone.
resource "aws_cloudwatch_metric_alarm" "fanout_batches_given_up" {
  alarm_name          = "${var.name}-fanout-batches-given-up"
  alarm_description   = "The fanout's stream mapping gave up on batches; their metadata is in ${aws_sqs_queue.fanout_failures.name}. See README.md, Operating."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = aws_sqs_queue.fanout_failures.name }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  actions_enabled     = true
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions

  tags = var.tags
}
