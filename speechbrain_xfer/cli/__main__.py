"""``python -m speechbrain_xfer.cli``: the ``sbx`` command."""

import sys

from speechbrain_xfer.cli import main

sys.exit(main())
