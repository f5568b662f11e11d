"""minitron-search: find the best pruned + distilled model of a teacher within a parameter budget.

    python search.py --budget 70M             # the whole search on the embedded default teacher
    python search.py --help                   # every option

The command line lives in `search/cli/` (also installed as the `minitron-search` command); it maps
the options onto the Python API, `search.api` (docs/usage.md).
"""

import sys

from search.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
