# The relay side: the permissions of the eventrelay pod's own role (IRSA),
# from ../../relay-policy.json (its ${...} placeholders are templatefile
# variables). The role itself, with its EKS OIDC trust policy, comes from
# your EKS tooling. Apply in the account that runs eventrelay.

terraform {
  required_version = ">= 1.3"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.0"
    }
  }
}

variable "role_name" {
  description = "Name of the pod's existing role (the ServiceAccount's eks.amazonaws.com/role-arn)."
  type        = string
}

variable "region" {
  description = "eventrelay's aws.region (the lease table's region)."
  type        = string
}

variable "account_id" {
  description = "This account (the lease table's)."
  type        = string
}

variable "stream_role_arn" {
  description = "aws.stream_role.role_arn: the customer's stream role."
  type        = string
}

variable "lease_table" {
  description = "source.kinesis.lease_table (default: the application name, eventrelay)."
  type        = string
  default     = "eventrelay"
}

variable "replay_bucket" {
  description = "Bucket read by replay and --backfill; empty when S3 replay is not used."
  type        = string
  default     = ""
}

variable "replay_prefix" {
  description = "Key prefix the exports are under; empty for the whole bucket."
  type        = string
  default     = ""
}

locals {
  relay = jsondecode(templatefile("${path.module}/../../relay-policy.json", {
    region          = var.region
    account_id      = var.account_id
    stream_role_arn = var.stream_role_arn
    lease_table     = var.lease_table
    replay_bucket   = var.replay_bucket
    replay_prefix   = var.replay_prefix
  }))
  relay_statements = [for s in local.relay.Statement : s if
    var.replay_bucket != "" || !contains(["ListReplayBucket", "ReadReplayObjects"], s.Sid)
  ]
}

resource "aws_iam_role_policy" "relay" {
  name   = "eventrelay"
  role   = var.role_name
  policy = jsonencode(merge(local.relay, { Statement = local.relay_statements }))
}
