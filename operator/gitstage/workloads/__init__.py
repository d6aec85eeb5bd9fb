"""Pure workload logic: which version each binding wants, and the Deployment that serves it."""
