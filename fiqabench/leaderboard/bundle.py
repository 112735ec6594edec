"""Submission bundles: a run's results, samples and thumbnails in one zip with a hash manifest.

The public face of the bundle modules: `pack_bundle` (bundle_pack) makes one from a run folder,
`read_bundle` (bundle_read) reads and verifies its members, `validate_bundle`,
`load_submission` and `load_submissions` (validate) re-score it and hand the leaderboard a
`Submission`.
"""

from __future__ import annotations

from fiqabench.leaderboard.bundle_pack import default_bundle_path, pack_bundle
from fiqabench.leaderboard.bundle_read import (
    BUNDLE_SCHEMA,
    DEFAULT_LIMITS,
    BundleContents,
    BundleError,
    BundleLimits,
    BundleManifest,
    read_bundle,
)
from fiqabench.leaderboard.validate import (
    ValidationReport,
    load_submission,
    load_submissions,
    validate_bundle,
)

__all__ = [
    "BUNDLE_SCHEMA",
    "DEFAULT_LIMITS",
    "BundleContents",
    "BundleError",
    "BundleLimits",
    "BundleManifest",
    "ValidationReport",
    "default_bundle_path",
    "load_submission",
    "load_submissions",
    "pack_bundle",
    "read_bundle",
    "validate_bundle",
]
