"""``python -m tt_platform.ib.emulator``; ``main`` is importable for the ``tt gateway-sim`` command."""

from tt_platform.ib.emulator.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
