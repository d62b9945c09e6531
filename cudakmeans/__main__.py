"""``python -m cudakmeans``: the command-line tool (see :mod:`cudakmeans.cli`)."""

from .cli import console_main

if __name__ == "__main__":
    console_main()
