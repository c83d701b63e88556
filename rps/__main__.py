import sys

from rps.cli import main

sys.exit(main())
