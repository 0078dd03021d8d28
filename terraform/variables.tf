# The root configuration's only input: where the provider deploys. Everything else is set in the
# module block of main.tf (the module's variables are the deployment's settings, declared once in
# modules/ripple/variables.tf).

variable "region" {
  description = "AWS region to deploy to."
  type        = string
  default     = "us-east-1"
}
