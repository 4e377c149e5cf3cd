import sys

from dss.cli import main

sys.exit(main())
