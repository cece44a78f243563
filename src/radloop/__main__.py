"""``python -m radloop`` runs the command line."""

from radloop.cli import main

main(prog_name="radloop")
