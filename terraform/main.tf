# Ripple: the whole AWS stack from modules/ripple. Build the zips first: bash scripts/package.sh

locals {
  # Written by `bash scripts/package.sh` next to the zips: their architecture and hashes.
  build_record_file = "${path.module}/../target/lambda/build.json"
}

module "ripple" {
  source = "./modules/ripple"

  # Written by `bash scripts/package.sh` (cargo lambda build --release --output-format zip).
  lambda_artifacts_dir = "${path.module}/../target/lambda"
  build_record         = jsondecode(file(local.build_record_file))

  name                                   = var.name
  architecture                           = var.architecture
  log_level                              = var.log_level
  lambda_system_log_level                = var.lambda_system_log_level
  connect_memory_mb                      = var.connect_memory_mb
  ingest_memory_mb                       = var.ingest_memory_mb
  fanout_memory_mb                       = var.fanout_memory_mb
  connect_timeout_seconds                = var.connect_timeout_seconds
  ingest_timeout_seconds                 = var.ingest_timeout_seconds
  fanout_timeout_seconds                 = var.fanout_timeout_seconds
  connection_ttl_seconds                 = var.connection_ttl_seconds
  position_ttl_seconds                   = var.position_ttl_seconds
  message_ttl_seconds                    = var.message_ttl_seconds
  position_rate                          = var.position_rate
  resume_window_seconds                  = var.resume_window_seconds
  sweep_interval_minutes                 = var.sweep_interval_minutes
  message_rate                           = var.message_rate
  fanout_max_in_flight                   = var.fanout_max_in_flight
  fanout_posts_per_second                = var.fanout_posts_per_second
  fanout_member_cache_ms                 = var.fanout_member_cache_ms
  enable_jwt_auth                        = var.enable_jwt_auth
  jwt_secret_ssm_parameter_name          = var.jwt_secret_ssm_parameter_name
  jwt_secret_kms_key_arn                 = var.jwt_secret_kms_key_arn
  jwks_url                               = var.jwks_url
  jwt_issuer                             = var.jwt_issuer
  jwt_audience                           = var.jwt_audience
  allow_anonymous_users                  = var.allow_anonymous_users
  deletion_protection                    = var.deletion_protection
  kms_key_arn                            = var.kms_key_arn
  stage_name                             = var.stage_name
  throttling_rate_limit                  = var.throttling_rate_limit
  throttling_burst_limit                 = var.throttling_burst_limit
  manage_api_gateway_account             = var.manage_api_gateway_account
  enable_access_logs                     = var.enable_access_logs
  domain_name                            = var.domain_name
  certificate_arn                        = var.certificate_arn
  log_retention_days                     = var.log_retention_days
  fanout_batch_size                      = var.fanout_batch_size
  fanout_maximum_batching_window_seconds = var.fanout_maximum_batching_window_seconds
  fanout_parallelization_factor          = var.fanout_parallelization_factor
  fanout_bisect_batch_on_function_error  = var.fanout_bisect_batch_on_function_error
  fanout_maximum_retry_attempts          = var.fanout_maximum_retry_attempts
  fanout_maximum_record_age_seconds      = var.fanout_maximum_record_age_seconds

  # Dashboard and alarms (modules/ripple/observability.tf).
  alarm_sns_topic_arn           = var.alarm_sns_topic_arn
  alarm_iterator_age_ms         = var.alarm_iterator_age_ms
  alarm_throttled_posts_percent = var.alarm_throttled_posts_percent
}
