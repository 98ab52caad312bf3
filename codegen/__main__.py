"""`python -m sigforge.codegen` runs the CLI."""

from .cli import main

main()
