#!/usr/bin/env bash
# LocalStack init hook: the stream, lease table, export buckets and the
# cross-account role (trusting an external ID) eventrelay expects.
set -euo pipefail
awslocal kinesis create-stream --stream-name onewelcome-events --shard-count 4
awslocal kinesis wait stream-exists --stream-name onewelcome-events
awslocal dynamodb create-table --table-name eventrelay --billing-mode PAY_PER_REQUEST \
  --attribute-definitions AttributeName=ShardID,AttributeType=S --key-schema AttributeName=ShardID,KeyType=HASH
awslocal s3 mb s3://onewelcome-export
awslocal s3 mb s3://infobip-export
awslocal iam create-role --role-name onewelcome-stream --assume-role-policy-document '{
  "Version": "2012-10-17",
  "Statement": [{"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::000000000000:root"},
    "Action": "sts:AssumeRole", "Condition": {"StringEquals": {"sts:ExternalId": "local-external-id"}}}]}'
echo "eventrelay: local stream, table, buckets and role created"
