"""Node configuration file helpers (TOML): parsing with clear errors.

The node issue owns the full schema; this leaf only knows how to read TOML files and report
mistakes as :class:`ConfigError` with the file name.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from alloranet.errors import ConfigError


def load_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
