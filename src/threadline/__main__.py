"""`python -m threadline` runs the `threadline` command."""

from threadline.cli.main import main

# Guarded: worker processes started with `spawn` import the main module again.
if __name__ == "__main__":
    main()
