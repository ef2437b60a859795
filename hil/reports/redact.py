"""The one redaction function: nothing reaches a report, attachment or record before passing through here.

Three rules, applied to text, bytes and (recursively) JSON-like data:

1. PEM private-key blocks (`-----BEGIN ... PRIVATE KEY-----` up to the matching END, or to the end of a
   truncated text) become `[REDACTED PRIVATE KEY]`.
2. Fields whose name says they hold a secret (`dac_private_key`, `private_key`, `aes128_key`, `secret`,
   ...) keep their name and lose their value, in dicts and in `name: value`, `"name": "value"` and
   command-line `--name value` text.
3. Secrets registered during the run (`register_secret`: AES keys, private scalars) are removed wherever
   they appear: raw bytes, hex in either case with or without `:`/space/`0x`/comma separators (the shapes
   openssl, C arrays and our inspector print), base64 / base64url at any byte alignment (so a key inside
   a larger base64 blob is caught too), and the escaped form of a Python bytes repr (a traceback showing
   a fixture value).

Why a process-wide registry: the fixtures that generate keys and the code that attaches artefacts are far
apart; registering at generation time is the one place that knows what is secret. xdist workers are separate
processes, and each attaches only what it generated, so a per-process registry is enough. Secrets are never
written anywhere by this module.
"""

from __future__ import annotations

import base64
import re
from typing import Any, TypeVar

from hil.errors import InputError

REDACTED = "[REDACTED]"
REDACTED_KEY = "[REDACTED PRIVATE KEY]"
MIN_SECRET_BYTES = 8
"""Shorter values would redact ordinary data by coincidence; every real key is 16 bytes or more."""

_PEM = r"-----BEGIN ([A-Z0-9 ]*)PRIVATE KEY-----.*?(?:-----END \1PRIVATE KEY-----|\Z)"
_PEM_TEXT = re.compile(_PEM, re.S)
_PEM_BYTES = re.compile(_PEM.encode(), re.S)
_FIELD = r"[\w.-]*(?:private_?key|priv_?key|aes(?:128|256)?_?key|secret|passphrase|password)[\w.-]*"
_FIELD_NAME = re.compile(rf"(?i){_FIELD}")
_FIELD_TEXT = re.compile(
    rf"""(?ix)
    (?P<name>--{_FIELD}(?:\s*=\s*|\s+)|["']?\b{_FIELD}["']?\s*[:=]\s*)
    (?P<value>"(?:[^"\\]|\\.)*"|'[^']*'|[^\s,;}}\]]+)
    """
)

T = TypeVar("T")
_secrets: dict[bytes, tuple[re.Pattern[str], re.Pattern[bytes]]] = {}


def _b64_cores(secret: bytes) -> set[str]:
    """The base64 characters determined by `secret` alone, for each of the 3 alignments inside a blob."""
    cores = set()
    for shift in range(3):
        enc = base64.b64encode(b"\0" * shift + secret + b"\0\0").decode()
        first = -(-8 * shift // 6)  # first character whose 6 bits all come from the secret
        last = 8 * (shift + len(secret)) // 6  # one past the last such character
        core = enc[first:last]
        cores.add(core)
        cores.add(core.replace("+", "-").replace("/", "_"))
    return cores


def _bytes_literal(secret: bytes, quote: str) -> str:
    """The body of Python's `repr(bytes)` for `secret` inside a literal delimited by `quote` (tracebacks)."""
    special = {
        ord("\\"): "\\\\",
        ord("\t"): "\\t",
        ord("\n"): "\\n",
        ord("\r"): "\\r",
        ord(quote): "\\" + quote,
    }
    return "".join(special.get(b) or (chr(b) if 32 <= b < 127 else f"\\x{b:02x}") for b in secret)


def _patterns(secret: bytes) -> tuple[re.Pattern[str], re.Pattern[bytes]]:
    hex_form = r"(?:[\s:,]*(?:0x)?)".join(f"{b:02x}" for b in secret)
    literal = {_bytes_literal(secret, q) for q in "'\""}
    cores = sorted(_b64_cores(secret) | literal, key=len, reverse=True)
    alternatives = [hex_form, *(re.escape(c) for c in cores)]
    text = re.compile("(?i:" + hex_form + ")|" + "|".join(alternatives[1:]))
    return text, re.compile(text.pattern.encode())


def register_secret(value: bytes | str) -> None:
    """Mark `value` (raw bytes, or a hex string such as an `--aes128_key` argument) as secret for this run."""
    if isinstance(value, str):
        text = value.strip().removeprefix("0x")
        try:
            data = bytes.fromhex(text)
        except ValueError:
            data = text.encode()
    else:
        data = bytes(value)
    if len(data) < MIN_SECRET_BYTES:
        raise InputError.field("secret", f"<{len(data)} bytes>", f"at least {MIN_SECRET_BYTES} bytes")
    if data not in _secrets:
        _secrets[data] = _patterns(data)


def register_private_key(key: Any) -> None:
    """Register an EC/RSA private key from `cryptography` by its private scalar (the bytes that matter)."""
    value = key.private_numbers().private_value
    register_secret(value.to_bytes((value.bit_length() + 7) // 8 or 1, "big"))


def clear_secrets() -> None:
    """Forget every registered secret (test isolation; a new run starts empty)."""
    _secrets.clear()


def _redact_text(text: str) -> str:
    text = _PEM_TEXT.sub(REDACTED_KEY, text)
    text = _FIELD_TEXT.sub(_mask_field, text)
    for pattern, _ in _secrets.values():
        text = pattern.sub(REDACTED, text)
    return text


def _mask_field(match: re.Match[str]) -> str:
    value = match["value"]
    quote = value[0] if value[:1] in "\"'" else ""
    return f"{match['name']}{quote}{REDACTED}{quote}"


def _redact_bytes(data: bytes) -> bytes:
    data = _PEM_BYTES.sub(REDACTED_KEY.encode(), data)
    for secret, (_, printed) in _secrets.items():
        # A raw secret keeps its length so offsets in a binary image (factory data) stay meaningful.
        data = data.replace(
            secret, (REDACTED.encode() + b"*" * len(secret))[: max(len(secret), len(REDACTED))]
        )
        data = printed.sub(REDACTED.encode(), data)
    return data


def redact(data: T) -> T:
    """Return `data` with every secret removed (same type: str, bytes, dict, list/tuple, other as is)."""
    if isinstance(data, str):
        return _redact_text(data)  # type: ignore[return-value]
    if isinstance(data, bytes | bytearray | memoryview):
        return _redact_bytes(bytes(data))  # type: ignore[return-value]
    if isinstance(data, dict):
        return {  # type: ignore[return-value]
            k: (REDACTED if isinstance(k, str) and _FIELD_NAME.fullmatch(k) and v is not None else redact(v))
            for k, v in data.items()
        }
    if isinstance(data, list | tuple):
        return type(data)(redact(v) for v in data)  # type: ignore[return-value]
    return data


def is_clean(data: object) -> bool:
    """True when `redact` would change nothing (for assertions and report self-checks)."""
    return redact(data) == data
