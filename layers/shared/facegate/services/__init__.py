"""Use cases. Services take their repositories and adapters as constructor arguments."""
