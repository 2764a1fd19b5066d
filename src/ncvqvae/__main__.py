"""``python -m ncvqvae``: the same command line as the ``ncvqvae`` entry point."""

import sys

from ncvqvae.cli import main

sys.exit(main())
