"""``python -m ipfs_accel.cli`` runs the ``ipfs-accel`` command."""

import sys

from . import main

sys.exit(main())
