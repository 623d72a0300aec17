"""Webhooks: tenants register endpoints and receive domain events signed per Standard Webhooks."""
