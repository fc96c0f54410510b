"""The ``dpsrgan`` console entry point.

Each subcommand lives in ``dpsrgan/commands/<name>.py`` with two functions: ``register(sub)``
adds its parser, ``run(args) -> int`` does the work. This module only wires them together and
turns a :class:`~dpsrgan.errors.DpsrganError` into one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from dpsrgan import __version__
from dpsrgan.errors import DpsrganError

# Subcommand name -> module; each defines register(subparsers) and run(args) -> int and keeps
# its heavy imports (torch, mlflow) inside run(), so --help and argument errors stay instant.
COMMANDS = {
    "upscale": "dpsrgan.commands.upscale",
    "metrics": "dpsrgan.commands.metrics",
    "info": "dpsrgan.commands.info",
    "export": "dpsrgan.commands.export",
    "promote": "dpsrgan.commands.promote",
    "submit": "dpsrgan.commands.submit",
    "serve": "dpsrgan.commands.serve",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dpsrgan", description="DPSRGAN x4 super-resolution: upscale, measure, inspect, export, promote."
    )
    parser.add_argument("--version", action="version", version=f"dpsrgan {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, module_name in COMMANDS.items():
        module = importlib.import_module(module_name)
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    module = importlib.import_module(COMMANDS[args.command])
    try:
        return module.run(args)
    except DpsrganError as error:
        print(f"dpsrgan {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"dpsrgan {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
