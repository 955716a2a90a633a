"""The ``embedcluster`` command for pip users: the Rust CLI itself (the same code as the
cargo-built binary, linked into the native module), entered from a console script, so
``pip install embedcluster`` gives the commands the README shows without cargo.

Exit codes are the CLI's (0, 2 for an error, 130 on Ctrl-C); its own Ctrl-C handler
replaces Python's while it runs.
"""

from __future__ import annotations

import sys


def main() -> None:
    """Run ``embedcluster`` with ``sys.argv`` and exit with its status."""
    from . import _core

    sys.stdout.flush()
    sys.exit(_core.cli_main([sys.argv[0], *sys.argv[1:]]))


if __name__ == "__main__":
    main()
