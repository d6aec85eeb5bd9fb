"""Development tools: a local Kubernetes control plane built from Go modules, and the demo."""
