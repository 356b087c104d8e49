"""`python -m threadloom.evals`: the eval and replay commands on their own."""

from ._cli import app

app()
