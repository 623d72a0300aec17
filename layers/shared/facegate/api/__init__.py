"""HTTP plumbing shared by every function: the resolver, problem details, caller context."""
