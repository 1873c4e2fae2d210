"""``python -m qa`` runs the CLI."""

import sys

from .console import main

sys.exit(main())
