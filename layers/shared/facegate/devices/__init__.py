"""Device sessions: short-lived, narrow tokens a tenant's backend mints for one person's device."""
