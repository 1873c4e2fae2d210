"""``python -m qa`` runs the CLI."""

from .cli import cli

cli(prog_name="qa")
