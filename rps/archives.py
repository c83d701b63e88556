"""Unpack zip archives without trusting them.

A zip from a browser upload or a download can hold ``../`` members, absolute paths, symlinks or
a few kilobytes that expand to gigabytes.  Each member is checked before anything is written,
and the archive is unpacked into a fresh folder that is renamed into place only when complete.
"""

from __future__ import annotations

import shutil
import stat
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

from rps.errors import ArchiveError

# The study's dataset unpacks to about 400 MB; 4 GB leaves room for bigger class-folder sets
# while a zip bomb that expands to tens of gigabytes is refused before a byte is written.
MAX_UNPACKED_BYTES = 4 * 1024**3
MAX_MEMBERS = 200_000
# Images barely compress; a ratio above 200 only happens with crafted archives.
MAX_COMPRESSION_RATIO = 200
# The longest name one folder entry may have on Linux, macOS and Windows file systems (bytes).
MAX_NAME_BYTES = 255
# The methods Python's zipfile reads; others are named in the refusal.
READABLE_METHODS = {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA}
METHOD_NAMES = {9: "Deflate64", 93: "Zstandard", 95: "XZ", 97: "WavPack", 98: "PPMd", 99: "AES encryption"}
_REZIP = "zip the folder again with your system's standard zip (deflate, no password)"


def _safe_member_path(name: str) -> PurePosixPath:
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts or (path.parts and ":" in path.parts[0]):
        raise ArchiveError(f"Refused the archive: member {name!r} would land outside the target.")
    return path


def _is_symlink(info: zipfile.ZipInfo) -> bool:
    return stat.S_ISLNK(info.external_attr >> 16)


def check_archive(archive: zipfile.ZipFile, max_bytes: int = MAX_UNPACKED_BYTES) -> None:
    """Raise ``ArchiveError`` if any member is unsafe or the total expansion is absurd."""
    members = archive.infolist()
    if len(members) > MAX_MEMBERS:
        raise ArchiveError(f"Refused the archive: {len(members)} members (limit {MAX_MEMBERS}).")
    total = 0
    files: set[PurePosixPath] = set()
    folders: set[PurePosixPath] = set()
    for info in members:
        path = _safe_member_path(info.filename)
        if info.flag_bits & 0x1:
            raise ArchiveError(
                f"Refused the archive: {info.filename!r} is password-protected; {_REZIP}."
            )
        if info.compress_type not in READABLE_METHODS:
            method = METHOD_NAMES.get(info.compress_type, f"method {info.compress_type}")
            raise ArchiveError(
                f"Cannot unpack the archive: {info.filename!r} is compressed with {method}, which "
                f"this reader does not support; {_REZIP}."
            )
        long_part = next((part for part in path.parts if len(part.encode()) > MAX_NAME_BYTES), None)
        if long_part is not None:
            raise ArchiveError(
                f"Cannot unpack the archive: a name in it is {len(long_part.encode())} bytes long "
                f"({long_part[:40]}...), over the {MAX_NAME_BYTES} bytes a file system allows; "
                "rename the file and zip again."
            )
        (folders if info.is_dir() else files).add(path)
        folders.update(path.parents)
        if _is_symlink(info):
            raise ArchiveError(f"Refused the archive: member {info.filename!r} is a symlink.")
        total += info.file_size
        if info.compress_size and info.file_size / info.compress_size > MAX_COMPRESSION_RATIO:
            raise ArchiveError(
                f"Refused the archive: member {info.filename!r} expands "
                f"{info.file_size // max(info.compress_size, 1)}x, a sign of a zip bomb."
            )
    clash = sorted(files & folders)
    if clash:
        raise ArchiveError(
            f"Cannot unpack the archive: it holds both a file and a folder named "
            f"{clash[0].as_posix()!r}; remove or rename the file and zip again."
        )
    if total > max_bytes:
        raise ArchiveError(
            f"Refused the archive: it expands to {total / 1024**3:.1f} GB "
            f"(limit {max_bytes / 1024**3:.1f} GB)."
        )


def extract_zip(zip_path: Path, target: Path, max_bytes: int = MAX_UNPACKED_BYTES) -> Path:
    """Safely unpack ``zip_path`` into ``target`` (which must not exist yet) and return it."""
    zip_path, target = Path(zip_path), Path(target)
    if target.exists():
        raise ArchiveError(f"Will not unpack over {target}: it already exists.")
    try:
        archive = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, OSError) as error:
        raise ArchiveError(f"{zip_path.name} is not a readable zip archive ({error}).") from None
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".unpacking-", dir=target.parent))
    try:
        with archive:
            check_archive(archive, max_bytes)
            written = 0
            for info in archive.infolist():
                relative = _safe_member_path(info.filename)
                destination = staging.joinpath(*relative.parts)
                if info.is_dir():
                    destination.mkdir(parents=True, exist_ok=True)
                    continue
                destination.parent.mkdir(parents=True, exist_ok=True)
                # Count real bytes too: a header can lie about the uncompressed size.
                with archive.open(info) as source, open(destination, "wb") as sink:
                    while chunk := source.read(1 << 20):
                        written += len(chunk)
                        if written > max_bytes:
                            raise ArchiveError("Refused the archive: it expands past the limit.")
                        sink.write(chunk)
        staging.rename(target)
    except (zipfile.BadZipFile, EOFError) as error:
        shutil.rmtree(staging, ignore_errors=True)
        raise ArchiveError(f"{zip_path.name} is corrupt ({error}); download or zip it again.") from None
    except (OSError, RuntimeError, NotImplementedError) as error:
        # Disk full, a read-only folder, or a member zipfile cannot read after all.
        shutil.rmtree(staging, ignore_errors=True)
        reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
        raise ArchiveError(f"Could not unpack {zip_path.name}: {reason}.") from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target
