"""`python -m gcgbench` is the `gcgbench` command."""

import sys

from gcgbench.cli.app import main

sys.exit(main())
