"""`python -m jobengine` runs the command line."""

from jobengine.cli import main

if __name__ == "__main__":
    main()
