"""`python -m gitstage` runs the CLI; `show --json` is answered before click is imported."""

import sys

from gitstage.cli.show_json import fast_main

if fast_main(sys.argv[1:]) is None:
    from gitstage.cli.main import main

    main()
