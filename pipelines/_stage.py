"""What every stage entry point shares: argument parsing of the params file, logging set-up, and
turning a :class:`~dpsrgan.errors.DpsrganError` into one line on stderr and exit code 2.

A stage module looks like::

    def run(args: argparse.Namespace, params: Params) -> None: ...
    def main(argv=None) -> int:
        parser = stage_parser(__doc__)
        parser.add_argument("--out", type=Path, required=True)
        return run_stage(run, parser, argv)
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from dpsrgan.config import Params, load_params
from dpsrgan.errors import DpsrganError


def stage_parser(doc: str | None) -> argparse.ArgumentParser:
    """A parser with the ``--params`` option every stage takes."""
    parser = argparse.ArgumentParser(description=(doc or "").strip().splitlines()[0] if doc else None)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"), help="params file")
    return parser


def run_stage(
    body: Callable[[argparse.Namespace, Params], None],
    parser: argparse.ArgumentParser,
    argv: Sequence[str] | None = None,
) -> int:
    """Parse argv, load params, run ``body``; user errors become one line and exit code 2."""
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    name = Path(sys.argv[0]).stem if argv is None else parser.prog
    try:
        body(args, load_params(args.params))
    except DpsrganError as error:
        print(f"{name}: error: {error}", file=sys.stderr)
        return 2
    return 0
