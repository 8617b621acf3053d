"""`python -m jobengine` runs the command line."""

from jobengine.cli import main

main()
