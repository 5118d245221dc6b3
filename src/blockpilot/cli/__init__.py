"""The ``blockpilot`` command line (Typer + Rich): users, keys, credentials, blocks, tools.

Delivery layer only: every command opens a :class:`~blockpilot.pilot.Pilot` from the
environment, calls it, prints, and closes it. Errors become exit codes through the one
table in :mod:`blockpilot.cli.errors`.
"""
