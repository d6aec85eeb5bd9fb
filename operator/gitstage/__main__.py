"""`python -m gitstage` runs the CLI, as the `gitstage` console script does."""

from gitstage.cli.entry import main

main()
