"""Where a signed tag's signature starts: the last line that opens an armored signature.

Git appends the signature to the tag message; GTO (through dulwich, `_find_signature`) shows the
message without it, and the signature covers the tag object up to that line.
"""

from __future__ import annotations

SSH_MARKER = b"-----BEGIN SSH SIGNATURE-----"
PGP_MARKER = b"-----BEGIN PGP SIGNATURE-----"
SIGNATURE_MARKERS = (
    PGP_MARKER,
    b"-----BEGIN PGP MESSAGE-----",
    b"-----BEGIN SIGNED MESSAGE-----",
    SSH_MARKER,
)


def signature_offset(body: bytes) -> int | None:
    """The offset of the last line starting a signature, if any."""
    found = None
    position = 0
    while position < len(body):
        if body.startswith(SIGNATURE_MARKERS, position):
            found = position
        newline = body.find(b"\n", position)
        if newline == -1:
            break
        position = newline + 1
    return found


def split_signed(raw: bytes) -> tuple[bytes, bytes | None]:
    """A raw tag object (or message) -> (the signed part, the armored signature or None)."""
    offset = signature_offset(raw)
    if offset is None:
        return raw, None
    return raw[:offset], raw[offset:]


def message_without_signature(message: str) -> str:
    """The message GTO shows for a signed tag."""
    return split_signed(message.encode("utf-8"))[0].decode("utf-8")
