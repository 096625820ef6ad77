"""`python -m sim ...` is the `capsim` command."""

from sim.app.cli import main

main()
