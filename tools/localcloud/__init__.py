"""The local cloud: template.yaml's resources in moto and its HTTP routes served by the real handlers."""
