"""`python -m gitstage` runs the CLI."""

from gitstage.cli.main import main

main()
