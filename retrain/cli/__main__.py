"""``python -m retrain.cli``."""

from __future__ import annotations

from retrain.cli.main import main

raise SystemExit(main())
