"""`python -m persona_exp` runs the command line."""

import sys

from persona_exp.cli import main

sys.exit(main())
