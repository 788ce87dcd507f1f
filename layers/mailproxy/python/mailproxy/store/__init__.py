"""DynamoDB persistence. The pynamodb models stay inside this package; callers get domain types."""
