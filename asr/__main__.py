"""``python -m asr`` runs the command line."""

import sys

from asr.cli import main

sys.exit(main())
