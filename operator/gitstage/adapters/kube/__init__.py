"""The Kubernetes adapter: the only code that calls the API server with the `kubernetes` client."""
