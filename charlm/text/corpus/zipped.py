"""The .zip reader: its text members sorted by name (or only ``--member``), read in memory,
never extracted; hidden members and macOS's ``__MACOSX/`` folder are skipped."""

from __future__ import annotations

import zipfile
import zlib

from ...errors import CharLMError
from .notes import few
from .reading import Guarded, Pieces, Reading, entry_texts, hidden, named_text, open_file


def zip_pieces(path: str, reading: Reading) -> Pieces:
    """One decoded-text iterator per text member of the zip at ``path``."""
    with open_file(path) as raw:
        try:
            zf = zipfile.ZipFile(raw)
        except (zipfile.BadZipFile, zlib.error, EOFError, ValueError) as e:
            raise CharLMError(_invalid(path, e)) from None
        with zf:
            infos = [i for i in zf.infolist() if not i.is_dir()]
            if reading.member is not None:
                info = _member(path, infos, reading.member)
                stream = _open_member(zf, info, path, reading)
                yield named_text(f"{path}:{info.filename}", stream, reading)
                return
            candidates = sorted(
                (
                    i
                    for i in infos
                    if not i.filename.startswith("__MACOSX/") and not hidden(i.filename.split("/"))
                ),
                key=lambda i: i.filename,
            )
            members = (
                (f"{path}:{i.filename}", _open_member(zf, i, path, reading)) for i in candidates
            )
            nothing = (
                f"{path}: no text member in this zip archive (it has {_listing(infos)});"
                f" pass a zip that contains text files"
            )
            yield from entry_texts(path, members, reading, nothing)


def _member(path: str, infos, member: str) -> zipfile.ZipInfo:
    chosen = [i for i in infos if i.filename == member]
    if not chosen:
        raise CharLMError(
            f"{path}: no member named {member!r} (it has {_listing(infos)});"
            f" pass one of these names to --member"
        )
    return chosen[-1]


def _listing(infos) -> str:
    return few([repr(i.filename) for i in infos], 5) if infos else "no files"


def _open_member(
    zf: zipfile.ZipFile, info: zipfile.ZipInfo, path: str, reading: Reading
) -> Guarded:
    name = f"{path}:{info.filename}"
    try:
        stream = zf.open(info)  # by the ZipInfo from the listing; never extracted
    except RuntimeError as e:  # encrypted
        raise CharLMError(f"{name}: cannot read ({e}); pass an unencrypted zip") from None
    except NotImplementedError as e:
        raise CharLMError(
            f"{name}: unsupported zip compression ({e}); re-create the zip with deflate"
        ) from None
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as e:
        raise CharLMError(_invalid(path, e)) from None
    return Guarded(stream, name, "zip archive", reading.budget)


def _invalid(path: str, e: Exception) -> str:
    return f"{path}: not a valid zip archive ({e}); re-create or re-download it"
