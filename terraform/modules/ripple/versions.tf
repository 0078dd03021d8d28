terraform {
  required_version = ">= 1.5.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.30" # provided.al2023 and current Lambda/API Gateway v2 arguments
    }
  }
}
