import sys

from syntra.cli import main

sys.exit(main())
