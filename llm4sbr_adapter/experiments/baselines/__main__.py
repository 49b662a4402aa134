"""``python -m llm4sbr_adapter.experiments.baselines`` (see :mod:`.cli`); without scipy, one line naming the extra."""

from __future__ import annotations

import sys

from llm4sbr_adapter.optional_deps import MissingExtraError

try:
    from .cli import main
except MissingExtraError as err:
    print(f"error: {err}", file=sys.stderr)
    raise SystemExit(2) from None

if __name__ == "__main__":
    raise SystemExit(main())
