"""The bundle format, and reading a bundle safely: members verified against its manifest.

A bundle holds exactly `bundle.json` (the manifest), `results.json`, `samples.jsonl` and
`thumbs/<sha256>.jpg`. Reading one never extracts it: every member is read into memory, and
only after the zip directory has passed the limits below, so a hostile bundle cannot write a
file, escape a folder, or exhaust memory or disk before it is refused.
"""

from __future__ import annotations

import hashlib
import json
import re
import stat
import struct
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from fiqabench.benchmark.results import RESULTS_FILE, SAMPLES_FILE
from fiqabench.errors import UserError, describe_validation_error
from fiqabench.leaderboard.bundle_thumbs import clean_thumbnail

BUNDLE_SCHEMA: Literal["fiqabench.bundle/1"] = "fiqabench.bundle/1"
MANIFEST_MEMBER = "bundle.json"
RESULTS_MEMBER = RESULTS_FILE
SAMPLES_MEMBER = SAMPLES_FILE
THUMB_PATTERN = re.compile(r"thumbs/([0-9a-f]{64})\.jpg")
_REQUIRED = (MANIFEST_MEMBER, RESULTS_MEMBER, SAMPLES_MEMBER)
_COMPRESSIONS = frozenset({zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED})
_MIB = 1 << 20
# End of central directory: signature, disk numbers, entry counts, directory size and offset,
# comment length; a zip64 locator (which would override these) sits just before it.
_END_RECORD = struct.Struct("<4s4H2LH")
_END_SIGNATURE = b"PK\x05\x06"
_ZIP64_LOCATOR = b"PK\x06\x07"
_MAX_COMMENT = 0xFFFF


@dataclass(frozen=True)
class BundleLimits:
    """What a bundle may hold; sizes are uncompressed bytes, checked from the zip directory."""

    max_bundle_bytes: int = 384 * _MIB  # the zip file itself
    max_members: int = 20_000
    max_directory_bytes: int = 8 * _MIB  # the zip's central directory, read before all else
    max_total_bytes: int = 384 * _MIB
    max_manifest_bytes: int = 16 * _MIB
    max_results_bytes: int = 32 * _MIB
    max_samples_bytes: int = 256 * _MIB  # ~6x that in memory while checked
    max_thumbnail_bytes: int = 64 * 1024
    max_thumbnails: int = 10_000  # distinct thumbnail images
    # Sizes are capped above and reads stop at the declared size, so this is a second line: a
    # run's JSON deflates 5-10:1 (its hashes do not compress), even very repetitive answers
    # stay far below 500:1, and a deflate bomb sits near deflate's ceiling of about 1000:1.
    # Small members are exempt: a few kilobytes cannot hurt.
    max_compression_ratio: float = 500.0
    ratio_exempt_bytes: int = 64 * 1024

    def member_cap(self, name: str) -> int:
        caps = {
            MANIFEST_MEMBER: self.max_manifest_bytes,
            RESULTS_MEMBER: self.max_results_bytes,
            SAMPLES_MEMBER: self.max_samples_bytes,
        }
        return caps.get(name, self.max_thumbnail_bytes)


DEFAULT_LIMITS = BundleLimits()


class BundleMember(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    path: str
    size: int = Field(ge=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class BundleManifest(BaseModel):
    """`bundle.json`: every other member with its size and hash, and the thumbnail map."""

    model_config = ConfigDict(extra="forbid")
    schema_version: Literal["fiqabench.bundle/1"] = BUNDLE_SCHEMA
    fiqabench_version: str = Field(pattern=r"^[0-9A-Za-z.+!-]{1,64}$")
    created_at: AwareDatetime
    members: list[BundleMember]
    # "task/sample_id" → "thumbs/<sha256>.jpg" (samples.jsonl holds no image paths)
    thumbnails: dict[str, str] = Field(default_factory=dict)


@dataclass(frozen=True)
class BundleContents:
    """A bundle's verified members: sizes and hashes match the manifest, thumbnails re-encoded."""

    manifest: BundleManifest
    results: bytes
    samples: bytes
    thumbnails: dict[str, bytes]  # "task/sample_id" → JPEG bytes


class BundleError(UserError):
    """A malformed or unsafe bundle; the message names the bundle, the member and the problem."""


Fail = Callable[[str], BundleError]


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_bundle(path: Path, limits: BundleLimits = DEFAULT_LIMITS) -> BundleContents:
    """Read and verify a bundle in memory; raises BundleError on the first problem found."""

    def fail(problem: str) -> BundleError:
        return BundleError(problem, path=path)

    if not path.is_file():
        raise fail("file not found")
    size = path.stat().st_size
    if size > limits.max_bundle_bytes:
        raise fail(f"bundle is {size} bytes, over the limit of {limits.max_bundle_bytes}")
    try:
        problem = _directory_problem(path, limits)
        if problem:
            raise fail(problem)
        with zipfile.ZipFile(path) as archive:
            infos = _checked_directory(archive, limits, fail)
            manifest = _read_manifest(archive, infos[MANIFEST_MEMBER], fail)
            data = _read_listed(archive, infos, manifest, limits, fail)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, ValueError) as exc:
        raise fail(f"not a readable zip file: {exc}") from None
    thumbnails = _thumbnails(manifest, data, fail)
    return BundleContents(
        manifest=manifest,
        results=data[RESULTS_MEMBER],
        samples=data[SAMPLES_MEMBER],
        thumbnails=thumbnails,
    )


def _directory_problem(path: Path, limits: BundleLimits) -> str | None:
    """Size up the central directory from the end record, before zipfile loads all of it."""
    with path.open("rb") as stream:
        size = stream.seek(0, 2)
        tail_size = min(size, _END_RECORD.size + _MAX_COMMENT)
        stream.seek(size - tail_size)
        tail = stream.read(tail_size)
    at = tail.rfind(_END_SIGNATURE)
    if at < 0 or len(tail) - at < _END_RECORD.size:
        return "not a readable zip file: no end of central directory"
    entries, directory_size = _END_RECORD.unpack_from(tail, at)[4:6]
    if tail[max(at - 20, 0) : at].startswith(_ZIP64_LOCATOR) or entries == 0xFFFF:
        return "zip64 archives are not accepted (a bundle never needs one)"
    if entries > limits.max_members:
        return f"{entries} members, over the limit of {limits.max_members}"
    if directory_size > limits.max_directory_bytes:
        return (
            f"zip directory is {directory_size} bytes, over the limit of "
            f"{limits.max_directory_bytes}"
        )
    return None


def _checked_directory(
    archive: zipfile.ZipFile, limits: BundleLimits, fail: Fail
) -> dict[str, zipfile.ZipInfo]:
    """Every check the zip directory allows, before a single member is decompressed."""
    infos = archive.infolist()
    if len(infos) > limits.max_members:
        raise fail(f"{len(infos)} members, over the limit of {limits.max_members}")
    by_name: dict[str, zipfile.ZipInfo] = {}
    total = 0
    for info in infos:
        name = info.filename
        problem = _name_problem(name) or _entry_problem(info)
        if problem:
            raise fail(problem)
        if name in by_name:
            raise fail(f"member '{name}' appears twice")
        by_name[name] = info
        cap = limits.member_cap(name)
        if info.file_size > cap:
            raise fail(f"member '{name}' is {info.file_size} bytes, over the limit of {cap}")
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > limits.ratio_exempt_bytes and ratio > limits.max_compression_ratio:
            raise fail(
                f"member '{name}' expands {ratio:.0f}:1, over the limit of "
                f"{limits.max_compression_ratio:.0f}:1 (a zip bomb?)"
            )
        total += info.file_size
        if total > limits.max_total_bytes:
            raise fail(f"members total over {limits.max_total_bytes} bytes uncompressed")
    for required in _REQUIRED:
        if required not in by_name:
            raise fail(f"missing member '{required}'")
    return by_name


def _name_problem(name: str) -> str | None:
    shown = ascii(name)
    if "\\" in name:
        return f"member path {shown} contains a backslash"
    if name.startswith("/") or re.match(r"[A-Za-z]:", name):
        return f"member path {shown} is absolute: it would leave the bundle"
    if ".." in name.split("/"):
        return f"member path {shown} contains '..': it would leave the bundle"
    if name not in _REQUIRED and not THUMB_PATTERN.fullmatch(name):
        return (
            f"unexpected member {shown}: a bundle holds only {', '.join(_REQUIRED)} "
            "and thumbs/<sha256>.jpg"
        )
    return None


def _entry_problem(info: zipfile.ZipInfo) -> str | None:
    name = info.filename
    if stat.S_ISLNK(info.external_attr >> 16):
        return f"member '{name}' is a symbolic link"
    if info.flag_bits & 0x1:
        return f"member '{name}' is encrypted"
    if info.compress_type not in _COMPRESSIONS:
        return f"member '{name}' uses an unsupported compression method ({info.compress_type})"
    return None


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, fail: Fail) -> bytes:
    # Read one byte past the declared size: a member that inflates beyond what the directory
    # says is refused without reading the rest.
    try:
        with archive.open(info) as stream:
            data = stream.read(info.file_size + 1)
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as exc:
        raise fail(f"member '{info.filename}' is corrupt: {exc}") from None
    if len(data) != info.file_size:
        raise fail(f"member '{info.filename}' does not match its size in the zip directory")
    return data


def _read_manifest(archive: zipfile.ZipFile, info: zipfile.ZipInfo, fail: Fail) -> BundleManifest:
    data = _read_member(archive, info, fail)
    document = parse_json(data, MANIFEST_MEMBER, fail)
    if isinstance(document, dict) and document.get("schema_version") != BUNDLE_SCHEMA:
        raise fail(
            f"{MANIFEST_MEMBER}: unsupported schema_version "
            f"{document.get('schema_version')!a} (this fiqabench reads {BUNDLE_SCHEMA})"
        )
    try:
        return BundleManifest.model_validate(document)
    except ValidationError as exc:
        raise fail(f"{MANIFEST_MEMBER}: {describe_validation_error(exc)}") from None


def parse_json(data: bytes | str, member: str, fail: Fail, line: int | None = None) -> Any:
    """One JSON document from a member (or from `line` of one); a bad one names where it is."""
    try:
        return json.loads(data.decode("utf-8") if isinstance(data, bytes) else data)
    except UnicodeDecodeError:
        raise fail(f"{member}: not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        where = f"{member}:{line if line is not None else exc.lineno}"
        raise fail(f"{where}: malformed JSON: {exc.msg}") from None
    except RecursionError:
        raise fail(f"{member}: JSON nested too deeply") from None
    except ValueError as exc:  # e.g. an integer longer than Python's 4,300-digit limit
        where = f"{member}:{line}" if line is not None else member
        raise fail(f"{where}: unreadable JSON: {exc}") from None


def _read_listed(
    archive: zipfile.ZipFile,
    infos: dict[str, zipfile.ZipInfo],
    manifest: BundleManifest,
    limits: BundleLimits,
    fail: Fail,
) -> dict[str, bytes]:
    listed: dict[str, BundleMember] = {}
    for member in manifest.members:
        if member.path == MANIFEST_MEMBER:
            raise fail(f"{MANIFEST_MEMBER} lists itself (it cannot hold its own hash)")
        if member.path in listed:
            raise fail(f"{MANIFEST_MEMBER} lists {member.path!a} twice")
        if member.path not in infos:
            raise fail(f"member {member.path!a} is listed in {MANIFEST_MEMBER} but missing")
        listed[member.path] = member
    for name in infos:
        if name != MANIFEST_MEMBER and name not in listed:
            raise fail(f"member '{name}' is not listed in {MANIFEST_MEMBER}")
    thumbs = sum(1 for name in listed if THUMB_PATTERN.fullmatch(name))
    if thumbs > limits.max_thumbnails:
        raise fail(f"{thumbs} thumbnails, over the limit of {limits.max_thumbnails}")
    data: dict[str, bytes] = {}
    for name, member in listed.items():
        content = _read_member(archive, infos[name], fail)
        if len(content) != member.size:
            raise fail(
                f"member '{name}' is {len(content)} bytes, {MANIFEST_MEMBER} says {member.size}"
            )
        if sha256_hex(content) != member.sha256:
            raise fail(
                f"member '{name}' does not match its sha256 in {MANIFEST_MEMBER} "
                "(it was changed after packing)"
            )
        data[name] = content
    return data


def _thumbnails(manifest: BundleManifest, data: dict[str, bytes], fail: Fail) -> dict[str, bytes]:
    """The thumbnail map, each entry a verified, re-encoded JPEG member of this bundle."""
    used: set[str] = set()
    cleaned: dict[str, bytes] = {}
    for key, target in manifest.thumbnails.items():
        match = THUMB_PATTERN.fullmatch(target)
        if match is None or target not in data:
            raise fail(
                f"{MANIFEST_MEMBER}: the thumbnail of {key!a} points at {target!a}, "
                "which is not a thumbs/<sha256>.jpg member of the bundle"
            )
        if target not in used:
            if sha256_hex(data[target]) != match.group(1):
                raise fail(f"member '{target}' is not named by the sha256 of its bytes")
            try:
                cleaned[target] = clean_thumbnail(data[target])
            except ValueError as exc:
                raise fail(f"member '{target}': {exc}") from None
            used.add(target)
    unused = sorted(name for name in data if THUMB_PATTERN.fullmatch(name) and name not in used)
    if unused:
        raise fail(f"member '{unused[0]}' is no sample's thumbnail")
    return {key: cleaned[target] for key, target in manifest.thumbnails.items()}
