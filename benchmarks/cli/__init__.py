"""The ``ld-gym`` command line: :mod:`benchmarks.cli.main` and one module per subcommand.

Each module parses its arguments and calls one library function; the logic lives below
(``benchmarks``, ``ld_agents``).
"""
