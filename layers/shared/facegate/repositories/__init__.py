"""Data access: PynamoDB items and the repositories that own them. Nothing else touches DynamoDB."""
