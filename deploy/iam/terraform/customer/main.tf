# The customer side: the stream role eventrelay assumes with the external
# ID, its trust policy and its permissions, from ../../trust-policy.json and
# ../../reader-policy.json (their ${...} placeholders are templatefile
# variables). Apply in the account that owns the stream.

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
  description = "Name of the stream role eventrelay assumes."
  type        = string
  default     = "onewelcome-stream"
}

variable "region" {
  description = "Region of the stream (eventrelay's aws.region)."
  type        = string
}

variable "account_id" {
  description = "This (the stream's) account."
  type        = string
}

variable "stream_name" {
  description = "source.kinesis.stream"
  type        = string
}

variable "relay_role_arn" {
  description = "The eventrelay pod's role, which calls sts:AssumeRole."
  type        = string
}

variable "external_id" {
  description = "The external ID issued to the eventrelay operator (aws.stream_role.external_id_file holds it)."
  type        = string
  sensitive   = true
}

variable "enhanced_fan_out" {
  description = "Grant the enhanced fan-out calls (source.kinesis.enhanced_fan_out)."
  type        = bool
  default     = false
}

variable "consumer_name" {
  description = "source.kinesis.consumer_name (enhanced fan-out only)."
  type        = string
  default     = "eventrelay"
}

variable "kms_key_arn" {
  description = "Customer-managed CMK encrypting the stream; empty when there is none."
  type        = string
  default     = ""
}

variable "max_session_duration" {
  description = "Seconds; at least aws.stream_role.duration (default 15m)."
  type        = number
  default     = 3600
}

locals {
  reader = jsondecode(templatefile("${path.module}/../../reader-policy.json", {
    region        = var.region
    account_id    = var.account_id
    stream_name   = var.stream_name
    consumer_name = var.consumer_name
    kms_key_arn   = var.kms_key_arn
  }))
  # Drop the statements of the features not in use (see ../../README.md).
  reader_statements = [for s in local.reader.Statement : s if
    (var.enhanced_fan_out || !startswith(s.Sid, "EnhancedFanOut")) &&
    (var.kms_key_arn != "" || s.Sid != "DecryptStreamRecords")
  ]
}

resource "aws_iam_role" "stream" {
  name                 = var.role_name
  description          = "Read by eventrelay (assumed with an external ID)"
  max_session_duration = var.max_session_duration
  assume_role_policy = templatefile("${path.module}/../../trust-policy.json", {
    relay_role_arn = var.relay_role_arn
    external_id    = var.external_id
  })
}

resource "aws_iam_role_policy" "reader" {
  name   = "eventrelay-reader"
  role   = aws_iam_role.stream.id
  policy = jsonencode(merge(local.reader, { Statement = local.reader_statements }))
}

output "role_arn" {
  description = "aws.stream_role.role_arn for eventrelay."
  value       = aws_iam_role.stream.arn
}
