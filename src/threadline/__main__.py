"""`python -m threadline` runs the `threadline` command."""

from threadline.cli.main import main

main()
