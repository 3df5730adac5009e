"""A JSON encoder for JSONFields whose values must read back with the same types on PostgreSQL.

jsonb keeps numbers as `numeric`, which has no float/integer distinction: the float 1e16 is
sent as `1e+16`, stored as 10000000000000000 and read back as the *integer*
10000000000000000. Writing such floats in positional notation with a fraction
(`10000000000000000.0`) keeps the scale, so they read back as floats. Floats written with a
negative exponent (`1e-07`) already keep theirs. Everything else is json.JSONEncoder's output.

Use: `models.JSONField(encoder=FloatPreservingJSONEncoder)` (a no-op migration).
"""

import json
from decimal import Decimal
from json.encoder import INFINITY, _make_iterencode, encode_basestring, encode_basestring_ascii


def float_text(value: float) -> str:
    """repr(value), except positive-exponent floats are written out in full with `.0`."""
    if value != value or value in (INFINITY, -INFINITY):
        raise ValueError(f"Out of range float values are not JSON compliant: {value!r}")
    text = float.__repr__(value)
    if "e+" in text:
        return format(Decimal(text), "f") + ".0"
    return text


class FloatPreservingJSONEncoder(json.JSONEncoder):
    """json.JSONEncoder with float_text for floats.

    `encode` tries the C encoder first: its text is the same unless a float came out in
    exponent notation ("e+", which float_text rewrites) or out of range ("NaN", "Infinity",
    which float_text refuses); only then (or when a string happens to hold those letters)
    does the pure-Python path below run. A span's inputs and outputs are encoded at C speed.
    """

    def encode(self, o):
        text = super().encode(o) if isinstance(o, str) else "".join(json.JSONEncoder.iterencode(self, o, True))
        if "e+" in text or "NaN" in text or "Infinity" in text:
            return "".join(self.iterencode(o, _one_shot=True))
        return text

    def iterencode(self, o, _one_shot=False):
        markers = {} if self.check_circular else None
        encoder = encode_basestring_ascii if self.ensure_ascii else encode_basestring
        return _make_iterencode(
            markers,
            self.default,
            encoder,
            self.indent,
            float_text,
            self.key_separator,
            self.item_separator,
            self.sort_keys,
            self.skipkeys,
            _one_shot,
        )(o, 0)
