import sys

from dss.commands.cli import main

sys.exit(main())
