"""`python -m alloranet` runs the command-line interface."""

from alloranet.cli import main

raise SystemExit(main())
