"""Adapters to AWS services other than DynamoDB (KMS signing, secrets, events)."""
