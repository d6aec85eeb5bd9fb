"""The kopf operator: thin handlers over the adapters and the pure workload logic."""
