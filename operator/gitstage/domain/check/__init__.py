"""`gitstage check`: what a registry's CI should refuse."""
