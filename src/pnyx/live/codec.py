"""Small conventions both live-state implementations share, so they store alike."""

from __future__ import annotations

import json

from pnyx.live.base import JSON, EncodedJSON


def encode_doc(doc: JSON | EncodedJSON) -> str:
    """A snapshot part as stored: compact JSON (raises TypeError if ``doc`` is not JSON);
    an :class:`EncodedJSON` is that already."""
    if isinstance(doc, EncodedJSON):
        return doc
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False)


def ttl_ms(ttl_s: float) -> int:
    """A TTL in whole milliseconds, at least one (the resolution Redis keeps)."""
    return max(1, round(ttl_s * 1000))
