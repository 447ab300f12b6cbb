"""Command-line subcommands, one module each.

Each module defines `register(subparsers)`, which adds its parser(s) and sets `func` on them:
`func(args) -> int` runs the command and returns the exit code. Modules import the library
lazily inside `func`, so `scitune --help` stays fast.
"""
