"""Reading a .zip someone uploaded without trusting it: in memory, never extracted, bounded before it is read.

Two kinds of zip come in, a dataset of pictures and a checkpoint folder; both are refused
whole, with one sentence, when they could hurt the server: a path that leaves the folder,
a zip bomb, too many files or bytes, an encrypted or exotic member, a damaged one. The
caller names the exception its own users understand (`error`).
"""

from __future__ import annotations

import zipfile
import zlib
from collections.abc import Callable
from pathlib import PurePosixPath

MAX_COMPRESSION_RATIO = 200  # real files compress 1–10×; a bomb compresses 1000×

# a file's bytes: all of them, or (given a count) only its first bytes, without unpacking the rest
Entry = tuple[PurePosixPath, Callable[..., bytes]]


def open_zip(path: str, name: str, error: type[Exception]) -> zipfile.ZipFile:
    if not zipfile.is_zipfile(path):
        raise error(f"{name} is not a zip archive")
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise error(f"{name} is a damaged zip archive: {exc}") from None


def checked_entries(archive: zipfile.ZipFile, max_files: int, max_bytes: int, error: type[Exception]) -> list[Entry]:
    """The archive's files (hidden ones dropped, one wrapping folder removed), after checks on its directory alone."""
    infos = [info for info in archive.infolist() if not info.is_dir()]
    if len(infos) > max_files:
        raise error(f"the zip holds {len(infos):,} files, over the limit of {max_files:,}")
    total = 0
    for info in infos:
        parts = PurePosixPath(info.filename.replace("\\", "/")).parts
        if info.filename.startswith(("/", "\\")) or ".." in parts or (parts and ":" in parts[0]):
            raise error(f"the zip has a path that leaves its folder ({info.filename[:80]}); refusing it")
        total += info.file_size
        if info.file_size > 1_000_000 and info.file_size > MAX_COMPRESSION_RATIO * max(info.compress_size, 1):
            raise error(f"{info.filename[:80]} would unpack {info.file_size / max(info.compress_size, 1):,.0f}× "
                        "larger than it is packed: this looks like a zip bomb; refusing it")
    if total > max_bytes:
        raise error(f"the zip would unpack to {_size(total)}, over the limit of {_size(max_bytes)}")
    return strip_common_folder([(PurePosixPath(info.filename), _reader(archive, info, error)) for info in infos
                                if not is_hidden(PurePosixPath(info.filename))])


def is_hidden(rel: PurePosixPath) -> bool:
    """macOS resource forks and dotfiles ride along in many zips; they are not the user's files."""
    return any(part.startswith(".") or part == "__MACOSX" for part in rel.parts)


def strip_common_folder(entries: list[Entry]) -> list[Entry]:
    """`digits/0/a.png`, `digits/1/b.png` → `0/a.png`, `1/b.png`: zipping a folder wraps it in one more."""
    while entries and all(len(rel.parts) > 1 for rel, _ in entries) and len({rel.parts[0] for rel, _ in entries}) == 1:
        entries = [(PurePosixPath(*rel.parts[1:]), read) for rel, read in entries]
    return entries


def _size(count: int) -> str:
    return f"{count / 1e9:.1f} GB" if count >= 1e9 else f"{count / 1e6:.0f} MB"


def _reader(archive: zipfile.ZipFile, info: zipfile.ZipInfo, error: type[Exception]) -> Callable[..., bytes]:
    # ZipExtFile stops at the header's declared size, which checked_entries has bounded.
    def read(count: int = -1) -> bytes:
        try:
            with archive.open(info) as member:
                return member.read(count)
        except NotImplementedError:  # before RuntimeError, of which it is a subclass
            raise error(f"{info.filename[:80]} is packed with a compression method that cannot be read here; "
                        "zip it again with the standard (deflate) method") from None
        except RuntimeError:  # zipfile's word for an encrypted member
            raise error(f"{info.filename[:80]} in the zip is encrypted; zip it again without a password") from None
        except (zipfile.BadZipFile, zlib.error, EOFError):
            raise error(f"{info.filename[:80]} in the zip is damaged (its data does not match its checksum); "
                        "zip it again") from None

    return read
