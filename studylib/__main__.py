"""`python -m studylib` runs the command line."""

import sys

from studylib.cli import main

sys.exit(main())
