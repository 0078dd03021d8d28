# Inputs of the Ripple module. Defaults are the ones documented in docs/deploy.md; the root
# configuration in terraform/ repeats them (a test checks that the two stay equal).

variable "name" {
  description = "Prefix of every resource name (table, functions, API, queue, log groups)."
  type        = string
  default     = "ripple"

  validation {
    condition     = can(regex("^[A-Za-z][A-Za-z0-9-]{0,39}$", var.name))
    error_message = "name must start with a letter and hold at most 40 letters, digits or dashes."
  }
}

variable "tags" {
  description = "Tags added to every resource that takes tags."
  type        = map(string)
  default     = {}
}

# --- Lambda packages ---------------------------------------------------------------------------

variable "lambda_artifacts_dir" {
  description = "Directory holding {connect,ingest,fanout}/bootstrap.zip, as written by `cargo lambda build --release --output-format zip` (target/lambda)."
  type        = string
}

variable "build_record" {
  description = "What scripts/package.sh built: target/lambda/build.json decoded ({architecture, profile, functions = {<package> = {zip, base64sha256}}}). The functions' architecture and code hashes come from it."
  type = object({
    architecture = string
    profile      = string
    functions = map(object({
      zip          = string
      base64sha256 = string
    }))
  })

  validation {
    condition     = contains(["arm64", "x86_64"], var.build_record.architecture)
    error_message = "build.json: architecture must be arm64 or x86_64; rebuild with bash scripts/package.sh [--arm64]."
  }

  validation {
    condition     = alltrue([for p in ["connect", "ingest", "fanout"] : contains(keys(var.build_record.functions), p)])
    error_message = "build.json must list connect, ingest and fanout; rebuild with bash scripts/package.sh."
  }
}

variable "architecture" {
  description = "Lambda instruction set to deploy, arm64 or x86_64. null (the default) = what the zips were built for (build_record.architecture); any other value must equal it, or the plan fails."
  type        = string
  default     = null

  validation {
    condition     = var.architecture == null || contains(["arm64", "x86_64"], coalesce(var.architecture, "arm64"))
    error_message = "architecture must be arm64, x86_64 or null (= what scripts/package.sh built)."
  }
}

variable "log_level" {
  description = "RUST_LOG filter for all three functions (for example info, or info,fanout=debug)."
  type        = string
  default     = "info"
}

variable "lambda_system_log_level" {
  description = "Lambda's own log lines for the three functions (JSON log format): WARN leaves out the START/END/REPORT lines of every invocation (a cost line at one ingest invocation per frame); INFO or DEBUG keeps them. common/src/deploy.rs's LAMBDA_SYSTEM_LOG_LEVEL is the default the cost model assumes."
  type        = string
  default     = "WARN"

  validation {
    condition     = contains(["DEBUG", "INFO", "WARN"], var.lambda_system_log_level)
    error_message = "lambda_system_log_level must be DEBUG, INFO or WARN."
  }
}

variable "connect_memory_mb" {
  description = "Memory of the connect function, in MB."
  type        = number
  default     = 128
}

variable "ingest_memory_mb" {
  description = "Memory of the ingest function, in MB."
  type        = number
  default     = 128
}

variable "fanout_memory_mb" {
  description = "Memory of the fanout function, in MB (CPU and network share grow with it)."
  type        = number
  default     = 512
}

variable "connect_timeout_seconds" {
  description = "Timeout of the connect function, in seconds."
  type        = number
  default     = 10
}

variable "ingest_timeout_seconds" {
  description = "Timeout of the ingest function, in seconds (API Gateway waits at most 29 s)."
  type        = number
  default     = 10
}

variable "fanout_timeout_seconds" {
  description = "Timeout of the fanout function, in seconds."
  type        = number
  default     = 60
}

# --- What the handlers read (RIPPLE_* environment variables) -----------------------------------

variable "connection_ttl_seconds" {
  description = "RIPPLE_CONNECTION_TTL_SECS: lifetime of connection and membership items. API Gateway closes a connection after 2 h, so keep it at most 7800 (2 h 10 min)."
  type        = number
  default     = 7800

  validation {
    condition     = var.connection_ttl_seconds >= 60 && var.connection_ttl_seconds <= 7800
    error_message = "connection_ttl_seconds must be between 60 and 7800."
  }
}

variable "position_ttl_seconds" {
  description = "RIPPLE_POSITION_TTL_SECS: how long a position item lives after its last write (the code's default: 15 min, beyond the connection's 10-minute idle timeout)."
  type        = number
  default     = 900

  validation {
    condition     = var.position_ttl_seconds >= 1 && floor(var.position_ttl_seconds) == var.position_ttl_seconds
    error_message = "position_ttl_seconds must be a positive whole number."
  }
}

variable "message_ttl_seconds" {
  description = "RIPPLE_MESSAGE_TTL_SECS: how long a chat message item lives (history)."
  type        = number
  default     = 86400

  validation {
    condition     = var.message_ttl_seconds >= 1 && floor(var.message_ttl_seconds) == var.message_ttl_seconds
    error_message = "message_ttl_seconds must be a positive whole number."
  }
}

variable "position_rate" {
  description = "RIPPLE_POSITION_RATE: positions one connection may publish per second (per ingest instance)."
  type        = number
  default     = 30

  validation {
    condition     = var.position_rate >= 1 && floor(var.position_rate) == var.position_rate
    error_message = "position_rate must be a positive whole number."
  }
}

variable "message_rate" {
  description = "RIPPLE_MESSAGE_RATE: chat messages one connection may publish per second (per ingest instance)."
  type        = number
  default     = 5

  validation {
    condition     = var.message_rate >= 1 && floor(var.message_rate) == var.message_rate
    error_message = "message_rate must be a positive whole number."
  }
}

variable "fanout_max_in_flight" {
  description = "RIPPLE_MAX_IN_FLIGHT: concurrent @connections requests per fanout instance."
  type        = number
  default     = 64

  validation {
    condition     = var.fanout_max_in_flight >= 1 && floor(var.fanout_max_in_flight) == var.fanout_max_in_flight
    error_message = "fanout_max_in_flight must be a positive whole number."
  }
}

variable "fanout_posts_per_second" {
  description = "RIPPLE_POSTS_PER_SECOND: @connections requests per second per fanout instance. The account-wide API Gateway bucket (10,000 RPS) is shared by every concurrent invocation and by client messages."
  type        = number
  default     = 2000

  validation {
    condition     = var.fanout_posts_per_second >= 1 && floor(var.fanout_posts_per_second) == var.fanout_posts_per_second
    error_message = "fanout_posts_per_second must be a positive whole number."
  }
}

variable "enable_jwt_auth" {
  description = "Require an HS256 JWT at $connect. connect gets the name of the SSM SecureString parameter jwt_secret_ssm_parameter_name (RIPPLE_JWT_SECRET_PARAMETER) and reads the secret at cold start; the secret never passes through Terraform."
  type        = bool
  default     = false
}

variable "jwt_secret_ssm_parameter_name" {
  description = "Name of the SSM SecureString parameter holding the HS256 secret (create it yourself; used only when enable_jwt_auth is true)."
  type        = string
  default     = "/ripple/jwt-secret"
}

variable "jwt_secret_kms_key_arn" {
  description = "ARN of the KMS key the secret parameter is encrypted with (null: the AWS managed key alias/aws/ssm)."
  type        = string
  default     = null
}

variable "jwks_url" {
  description = "RIPPLE_JWKS_URL: require an RS256/ES256 JWT at $connect, verified with this JSON Web Key Set (e.g. https://cognito-idp.<region>.amazonaws.com/<pool id>/.well-known/jwks.json). null: off."
  type        = string
  default     = null

  validation {
    condition     = var.jwks_url == null || startswith(coalesce(var.jwks_url, "https://"), "https://")
    error_message = "jwks_url must be an https:// URL."
  }
}

variable "jwt_issuer" {
  description = "RIPPLE_JWT_ISSUER: the `iss` tokens must carry (null: not checked)."
  type        = string
  default     = null
}

variable "jwt_audience" {
  description = "RIPPLE_JWT_AUDIENCE: the `aud` tokens must carry (null: not checked)."
  type        = string
  default     = null
}

variable "allow_anonymous_users" {
  description = "DEVELOPMENT ONLY. When no token is configured, trust the client's ?user= (anyone may claim any identity, and resume anyone's session). With false and no enable_jwt_auth or jwks_url, terraform plan stops and says what to set."
  type        = bool
  default     = false
}

# --- DynamoDB ----------------------------------------------------------------------------------

variable "deletion_protection" {
  description = "Turn on DynamoDB deletion protection for the table (then terraform destroy fails until it is turned off again)."
  type        = bool
  default     = false
}

variable "kms_key_arn" {
  description = "Optional customer managed KMS key for the table, the failure queue, the log groups and the functions' environment. null = AWS managed keys. The key policy must let DynamoDB, SQS, CloudWatch Logs and Lambda use it."
  type        = string
  default     = null
}

# --- API Gateway -------------------------------------------------------------------------------

variable "stage_name" {
  description = "API Gateway stage; the last path segment of the wss:// URL."
  type        = string
  default     = "prod"

  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{1,128}$", var.stage_name))
    error_message = "stage_name may hold only letters, digits, - and _."
  }
}

variable "throttling_rate_limit" {
  description = "Steady-state requests per second allowed on each route of the stage (the design load is 2,000 position messages/s in one channel)."
  type        = number
  default     = 3000
}

variable "throttling_burst_limit" {
  description = "Burst of requests allowed on each route of the stage."
  type        = number
  default     = 1500
}

variable "manage_api_gateway_account" {
  description = "Opt-in. Create an IAM role for API Gateway's logging and register it in this region's API Gateway account settings (aws_api_gateway_account, one per account and region). That setting is region-wide: it replaces the role the account already has, and after destroy it points at a deleted role. Leave false when the account already has one (aws apigateway get-account shows cloudwatchRoleArn)."
  type        = bool
  default     = false
}

variable "enable_access_logs" {
  description = "Write the stage's access log to CloudWatch. Needs the region's API Gateway CloudWatch role: one the account already has, or manage_api_gateway_account = true."
  type        = bool
  default     = false
}

variable "domain_name" {
  description = "Optional custom domain for the WebSocket API (e.g. ws.example.com). null = only the execute-api URL. Needs certificate_arn; point a DNS record at the custom_domain output's target."
  type        = string
  default     = null
}

variable "certificate_arn" {
  description = "ACM certificate (in the same region as the API) covering domain_name. Used only when domain_name is set."
  type        = string
  default     = null
}

variable "log_retention_days" {
  description = "Retention of the functions' and the API's log groups, in days."
  type        = number
  default     = 14

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a value CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, 60, 90, ...)."
  }
}

# --- Fanout event source mapping (DynamoDB stream -> fanout) -----------------------------------

variable "fanout_batch_size" {
  description = "Largest number of stream records per fanout invocation (1-10000)."
  type        = number
  default     = 100

  validation {
    condition     = var.fanout_batch_size >= 1 && var.fanout_batch_size <= 10000
    error_message = "fanout_batch_size must be between 1 and 10000."
  }
}

variable "fanout_maximum_batching_window_seconds" {
  description = "How long Lambda may wait to fill a batch (0-300 s). 0 keeps latency lowest; raising it trades latency for fewer, larger posts."
  type        = number
  default     = 0

  validation {
    condition     = var.fanout_maximum_batching_window_seconds >= 0 && var.fanout_maximum_batching_window_seconds <= 300
    error_message = "fanout_maximum_batching_window_seconds must be between 0 and 300."
  }
}

variable "fanout_parallelization_factor" {
  description = "Concurrent batches per stream shard (1-10). 1 keeps each shard in order, so one sender's chat reaches members in the order sent; above 1 Lambda keeps order per item only and that promise no longer holds (docs/deploy.md, Ordering)."
  type        = number
  default     = 1

  validation {
    condition     = var.fanout_parallelization_factor >= 1 && var.fanout_parallelization_factor <= 10
    error_message = "fanout_parallelization_factor must be between 1 and 10."
  }
}

variable "fanout_bisect_batch_on_function_error" {
  description = "Split a failing batch in two and retry the halves, isolating a poison record."
  type        = bool
  default     = true
}

variable "fanout_maximum_retry_attempts" {
  description = "Retries of a failing batch before its metadata goes to the failure queue (-1 = until the record expires, 0-10000)."
  type        = number
  default     = 5

  validation {
    condition     = var.fanout_maximum_retry_attempts >= -1 && var.fanout_maximum_retry_attempts <= 10000
    error_message = "fanout_maximum_retry_attempts must be between -1 and 10000."
  }
}

variable "fanout_maximum_record_age_seconds" {
  description = "Records older than this are not retried but sent to the failure queue (-1 = no limit, or 60-604800). Positions older than a few minutes are worthless to players."
  type        = number
  default     = 600

  validation {
    condition     = var.fanout_maximum_record_age_seconds == -1 || (var.fanout_maximum_record_age_seconds >= 60 && var.fanout_maximum_record_age_seconds <= 604800)
    error_message = "fanout_maximum_record_age_seconds must be -1 or between 60 and 604800."
  }
}

# --- Observability (observability.tf) ----------------------------------------------------------

variable "alarm_sns_topic_arn" {
  description = "SNS topic the alarms notify (on alarm and on recovery). null = no notifications; the alarms still show on the dashboard."
  type        = string
  default     = null

  validation {
    condition     = var.alarm_sns_topic_arn == null || can(regex("^arn:[^:]+:sns:[^:]+:[0-9]{12}:.+$", var.alarm_sns_topic_arn))
    error_message = "alarm_sns_topic_arn must be null or an SNS topic ARN."
  }
}

variable "alarm_iterator_age_ms" {
  description = "Alarm when the fanout's stream IteratorAge stays above this many milliseconds for 3 minutes (players see updates this late)."
  type        = number
  default     = 10000

  validation {
    condition     = var.alarm_iterator_age_ms >= 1000
    error_message = "alarm_iterator_age_ms must be at least 1000."
  }
}

variable "alarm_throttled_posts_percent" {
  description = "Alarm when more than this percentage of the fanout's @connections posts are answered 429 in 3 of 5 minutes."
  type        = number
  default     = 5

  validation {
    condition     = var.alarm_throttled_posts_percent > 0 && var.alarm_throttled_posts_percent <= 100
    error_message = "alarm_throttled_posts_percent must be above 0 and at most 100."
  }
}

variable "max_members_per_channel" {
  description = "RIPPLE_MAX_MEMBERS_PER_CHANNEL: members one channel may have; a join beyond it is refused channel_full (a soft cap: counted from the channel's roster, so joins in flight can pass it)."
  type        = number
  default     = 1000

  validation {
    condition     = var.max_members_per_channel >= 1 && floor(var.max_members_per_channel) == var.max_members_per_channel
    error_message = "max_members_per_channel must be a positive whole number."
  }
}

variable "resume_window_seconds" {
  description = "RIPPLE_RESUME_WINDOW_SECS: how long after a disconnect `?resume=1` restores the user's channels."
  type        = number
  default     = 120

  validation {
    condition     = var.resume_window_seconds >= 1 && floor(var.resume_window_seconds) == var.resume_window_seconds
    error_message = "resume_window_seconds must be a positive whole number."
  }
}

variable "sweep_interval_minutes" {
  description = "How often EventBridge runs the stale-connection sweep (fanout with {\"ripple\":\"sweep\"})."
  type        = number
  default     = 5

  validation {
    condition     = var.sweep_interval_minutes >= 2 && floor(var.sweep_interval_minutes) == var.sweep_interval_minutes
    error_message = "sweep_interval_minutes must be a whole number of at least 2 (rate() uses the plural unit)."
  }
}

variable "fanout_member_cache_ms" {
  description = "RIPPLE_MEMBER_CACHE_MS: how long a warm fanout instance reuses a channel's member list (0 = off, at most 1000)."
  type        = number
  default     = 0

  validation {
    condition     = var.fanout_member_cache_ms >= 0 && var.fanout_member_cache_ms <= 1000 && floor(var.fanout_member_cache_ms) == var.fanout_member_cache_ms
    error_message = "fanout_member_cache_ms must be a whole number from 0 to 1000."
  }
}
