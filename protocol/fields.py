"""A cursor over a binary answer payload, shared by the binary vendor codecs.

Reading past the end raises :class:`MalformedAnswerError` naming the answer and the
offset, so a short or truncated answer is a typed protocol error, never an IndexError.
"""

from __future__ import annotations

from kktmon.protocol.errors import MalformedAnswerError


class FieldCursor:
    """Take fixed-size fields from the front of ``payload``; ``what`` names it in errors."""

    def __init__(self, payload: bytes, what: str) -> None:
        self.payload = payload
        self.pos = 0
        self.what = what

    def take(self, size: int) -> bytes:
        if self.pos + size > len(self.payload):
            raise MalformedAnswerError(
                f"{self.what}: answer ends at byte {len(self.payload)}, field needs "
                f"{self.pos + size}"
            )
        chunk = self.payload[self.pos : self.pos + size]
        self.pos += size
        return chunk

    def uint(self, size: int) -> int:
        """Binary little-endian (both vendors pass FN fields through this way)."""
        return int.from_bytes(self.take(size), "little")

    def has(self, size: int) -> bool:
        return self.pos + size <= len(self.payload)

    def rest(self) -> bytes:
        return self.take(len(self.payload) - self.pos)
