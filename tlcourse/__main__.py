"""``python -m tlcourse`` runs the command-line interface."""

from tlcourse.cli import main

main()
