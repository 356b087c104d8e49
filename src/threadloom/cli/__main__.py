"""`python -m threadloom.cli`: the `threadloom` command."""

from . import main

main()
