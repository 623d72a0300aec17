"""facegate: the shared domain of the face verification service (config, errors, models, services, data)."""

__version__ = "0.1.0"
