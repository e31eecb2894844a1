"""`python -m bench.cli ...` is the `bench` command."""

from bench.cli.entry import main

main()
