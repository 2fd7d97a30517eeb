"""``python -m nnscratch`` runs the command line."""

import sys

from nnscratch.cli import main

sys.exit(main())
