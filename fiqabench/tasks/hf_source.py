"""Where the data of a task whose spec names a Hugging Face hub id comes from.

First a local mirror: `FIQABENCH_HF_MIRROR` names a folder of `save_to_disk` copies laid out as
MIRROR/<owner>/<name> (e.g. MIRROR/q-future/Q-Bench-HF), for machines that cannot reach the hub
or sites that keep one vetted copy. Otherwise the hub, through `datasets`, unless the Hugging Face
libraries' own switches (HF_HUB_OFFLINE, HF_DATASETS_OFFLINE) turn it off.
"""

from __future__ import annotations

import importlib.util
import os
import re
from pathlib import Path

MIRROR_ENV = "FIQABENCH_HF_MIRROR"
OFFLINE_ENVS = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")
_TRUE = frozenset({"1", "true", "yes", "on"})
# OWNER/NAME, each starting with a letter or digit (so never "." or ".."), as the hub has them.
HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*")


def mirrored_copy(hub_id: str) -> Path | None:
    """The mirror's copy of `hub_id`, when a mirror is set and holds one."""
    root = os.environ.get(MIRROR_ENV, "").strip()
    if not root or not HUB_ID.fullmatch(hub_id):
        return None
    copy = Path(root).expanduser() / hub_id
    return copy.resolve() if copy.is_dir() else None


def hub_switched_off() -> bool:
    return any(os.environ.get(name, "").strip().lower() in _TRUE for name in OFFLINE_ENVS)


def hub_usable() -> bool:
    """Whether a hub dataset may be loaded: `datasets` is installed and the hub not turned off.

    Whether the hub answers is not probed (a proxy may serve it where a plain connection fails):
    a failed download is a one-line error naming the dataset.
    """
    return not hub_switched_off() and _installed("datasets")


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a stubbed or half-imported module
        return False
