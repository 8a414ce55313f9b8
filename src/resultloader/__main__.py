"""`python -m resultloader`: the command line."""

from .cli import main

main()
