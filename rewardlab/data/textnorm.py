"""Normal forms of texts (long ones as fixed-size digests) for finding near-duplicates without copying words.

A normal form lower-cases a text and turns every run of separator characters into one space (none
at the ends). Building it as a string of words costs tens of bytes per word of input for a list
of words; here it is built and hashed piece by piece, so a huge text costs little more memory
than the text itself.
"""

from __future__ import annotations

import hashlib
import re

#: Characters per piece: small enough that a piece's temporary objects stay small.
CHUNK = 1 << 16


def normal_digest(text: str, separators: re.Pattern[str]) -> str | bytes:
    """The normal form of ``text``: lower-cased, with each run matching ``separators`` made one space.

    A short text's normal form is returned as a string; a long one's as its 16-byte digest
    (``bytes``, never equal to a string). Two texts get equal results exactly when their normal
    forms are equal (up to a 128-bit hash collision).

    Args:
        text: The text.
        separators: A pattern matching runs of separator characters (e.g. ``[^a-z0-9]+``), applied
            after lower-casing; its matches must not include letters that a piece boundary could split.
    """
    if len(text) <= CHUNK:
        return separators.sub(" ", text.lower()).strip(" ")
    digest = hashlib.blake2b(digest_size=16)
    started = pending_space = False
    for i in range(0, len(text), CHUNK):
        part = separators.sub(" ", text[i : i + CHUNK].lower())
        core = part.strip(" ")
        if not core:
            pending_space = pending_space or bool(part)
            continue
        if started and (pending_space or part[0] == " "):
            digest.update(b" ")
        digest.update(core.encode("utf-8", "surrogatepass"))
        started, pending_space = True, part[-1] == " "
    return digest.digest()
