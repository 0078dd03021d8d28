# Ripple: the whole AWS stack is modules/ripple, and this file is where it is configured: set its
# variables in the module block below (modules/ripple/variables.tf, or docs/deploy.md
# "Variables", lists them all with their defaults). Build the zips first: bash scripts/package.sh

locals {
  # Written by `bash scripts/package.sh` next to the zips: their architecture and hashes.
  build_record_file = "${path.module}/../target/lambda/build.json"

  # Put on every resource (the provider's default_tags, and the module's own tags).
  tags = { project = "ripple" }
}

module "ripple" {
  source = "./modules/ripple"

  # Written by `bash scripts/package.sh` (cargo lambda build --release --output-format zip).
  lambda_artifacts_dir = "${path.module}/../target/lambda"
  build_record         = jsondecode(file(local.build_record_file))

  name = "ripple"
  tags = local.tags

  # architecture comes from target/lambda/build.json (what `bash scripts/package.sh` built); set
  # it only to insist: a value other than the build's fails the plan.
  # architecture = "arm64"   # after: bash scripts/package.sh --arm64

  # Auth (docs/deploy.md, "Auth"): pick one, or the plan stops. HS256: store the secret first, e.g.
  #   aws ssm put-parameter --name /ripple/jwt-secret --type SecureString --value "$(openssl rand -base64 48)"
  # enable_jwt_auth               = true
  # jwt_secret_ssm_parameter_name = "/ripple/jwt-secret"
  # Or RS256/ES256 tokens of an identity provider (Cognito, Auth0, Keycloak, …):
  # jwks_url     = "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_XXXXXXXXX/.well-known/jwks.json"
  # jwt_issuer   = "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_XXXXXXXXX"
  # jwt_audience = "<app client id>"
  # Development only: no token, trust ?user= (anyone may be anyone).
  # allow_anonymous_users = true

  # Opt-in: take over aws_api_gateway_account (the region-wide CloudWatch role of API Gateway,
  # which access logs need). Leave it off if `aws apigateway get-account` already shows a
  # cloudwatchRoleArn.
  # manage_api_gateway_account = true
  # enable_access_logs         = true

  # Custom domain (ACM certificate in the same region):
  # domain_name     = "ws.example.com"
  # certificate_arn = "arn:aws:acm:eu-west-1:123456789012:certificate/…"

  # Alarms (README.md, Operating): notify an SNS topic (null = no notifications).
  # alarm_sns_topic_arn = "arn:aws:sns:eu-west-1:123456789012:ripple-alarms"
}
