"""Object keys under ``input/``: which are accepted, where a file moves to, what S3 is sent (pure).

S3 accepts any UTF-8 key of at most 1,024 bytes. The pipeline accepts any such key below
``input/`` — sub-folders, spaces, ``+``, ``%``, ``#``, ``?``, any script — except the shapes
``key_problem`` names, which are rejected with that reason.

A moved file keeps its path below the prefix (``input/2025/03/orders.csv`` ->
``archive/2025/03/orders.csv``). When that name would pass S3's limit (``rejected/`` is
three bytes longer than ``input/``) the destination is shortened: a readable start, a
hash of the original key and its extension. The original key always travels in the
copy's metadata (``source_metadata``).
"""

from __future__ import annotations

import base64
import hashlib
import posixpath
import unicodedata
from urllib.parse import quote

#: S3's limit on a key: bytes of its UTF-8 encoding.
MAX_KEY_BYTES = 1024
#: S3's limit on user metadata (names and values, UTF-8 bytes); we keep well inside it.
MAX_METADATA_BYTES = 2048
#: The longest percent-encoded key written to metadata; longer ones are written in base64.
MAX_ENCODED_KEY = 1400
#: Hex digits of the hash a shortened or distinct destination carries.
HASH_LENGTH = 12
#: An extension longer than this is not kept when a destination is shortened.
MAX_EXTENSION = 16


def key_problem(key: str, input_prefix: str) -> str | None:
    """Why ``key`` cannot be processed as an input file, or None when it can.

    Rejected: a key outside ``input_prefix`` or naming the prefix itself; a folder
    marker (ends with ``/``); an empty path segment (``//``); a ``.`` or ``..``
    segment; a control character; an invisible (Unicode ``Cf``) character anywhere
    below the prefix; a base name that starts or ends with whitespace.
    """
    if not key.startswith(input_prefix):
        return f"not under {input_prefix}"
    relative = key[len(input_prefix) :]
    if not relative:
        return "no file name: the key is the folder itself"
    if relative.endswith("/"):
        return "a folder marker, not a file (the key ends with '/')"
    for character in relative:
        category = unicodedata.category(character)
        if category == "Cc":
            return f"control character {_describe(character)} in the key"
        if category == "Cs":
            return f"unpaired surrogate {_describe(character)} in the key (not UTF-8)"
        if category == "Cf":
            return f"invisible character {_describe(character)} in the key"
    segments = relative.split("/")
    if "" in segments:
        return "an empty path segment ('//') in the key"
    for segment in segments:
        if segment in (".", ".."):
            return f"a '{segment}' path segment in the key"
    name = segments[-1]
    if name[0].isspace():
        return f"the file name starts with whitespace ({_describe(name[0])})"
    if name[-1].isspace():
        return f"the file name ends with whitespace ({_describe(name[-1])})"
    return None


def _describe(character: str) -> str:
    name = unicodedata.name(character, "")
    code = f"U+{ord(character):04X}"
    return f"{code} {name}" if name else code


def destination_key(key: str, from_prefix: str, to_prefix: str, *, distinct: str = "") -> str:
    """Where ``key`` moves: its path below ``from_prefix`` under ``to_prefix``, at most 1,024 bytes.

    Args:
        key: The source key (a key outside ``from_prefix`` keeps its base name).
        from_prefix: ``input/``.
        to_prefix: ``archive/`` or ``rejected/``.
        distinct: When not empty, a short hash of it goes before the extension
            (``orders~v1a2b3c4d5e6f.csv``): the name of a version whose plain name is taken.
    """
    relative = key[len(from_prefix) :] if key.startswith(from_prefix) else posixpath.basename(key)
    folder, name = posixpath.split(relative)
    stem, extension = _split_extension(name)
    if distinct:
        stem = f"{stem}~v{_digest(distinct)}"
    candidate = to_prefix + posixpath.join(folder, stem + extension)
    if len(candidate.encode()) <= MAX_KEY_BYTES:
        return candidate
    tail = f"~{_digest(key + distinct)}" + (extension if len(extension.encode()) <= MAX_EXTENSION else "")
    room = MAX_KEY_BYTES - len(to_prefix.encode()) - len(tail.encode())
    start = relative.encode()[:room].decode("utf-8", "ignore").rstrip("/")
    return to_prefix + start + tail


def _split_extension(name: str) -> tuple[str, str]:
    stem, extension = posixpath.splitext(name)
    return (stem, extension) if stem else (name, "")


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:HASH_LENGTH]


def copy_source(bucket: str, key: str, version_id: str | None = None) -> str:
    """``CopyObject``'s ``CopySource`` as the S3 API takes it: ``bucket/key`` URL-encoded.

    Every byte of the UTF-8 encoding except RFC 3986's unreserved characters and ``/`` is
    percent-encoded (a space is ``%20``, ``+`` is ``%2B``); a version is appended as
    ``?versionId=…``.
    """
    source = quote(f"{bucket}/{key}", safe="/")
    return source if version_id is None else f"{source}?versionId={quote(version_id, safe='')}"


def source_metadata(key: str, version_id: str | None) -> dict[str, str]:
    """The original key and version, as ASCII user metadata of the moved copy.

    The key is percent-encoded (``source-key``); a key whose encoding would pass
    ``MAX_ENCODED_KEY`` characters (a long non-Latin name) is written in base64 instead
    (``source-key-base64``), so that the metadata stays within S3's 2 KB.
    """
    encoded = quote(key, safe="/")
    metadata = (
        {"source-key": encoded}
        if len(encoded) <= MAX_ENCODED_KEY
        else {"source-key-base64": base64.b64encode(key.encode()).decode()}
    )
    if version_id is not None:
        metadata["source-version-id"] = version_id
    return metadata


def metadata_text(text: str, limit: int = 400) -> str:
    """Free text (a rejection reason) as a metadata value: ASCII only, at most ``limit`` characters."""
    return text.encode("ascii", "replace").decode()[:limit]
