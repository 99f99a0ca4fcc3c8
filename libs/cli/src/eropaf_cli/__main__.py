import sys

from eropaf_cli.main import main

sys.exit(main())
