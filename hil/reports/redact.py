"""The one redaction function: nothing reaches a report, attachment or record before passing through here.

Three rules, applied to text, bytes and (recursively) JSON-like data:

1. PEM private-key blocks (`-----BEGIN ... PRIVATE KEY-----` up to the matching END, or to the end of a
   truncated text) become `[REDACTED PRIVATE KEY]`.
2. Fields whose name says they hold a secret (`dac_private_key`, `private_key`, `aes128_key`, `secret`,
   ...) keep their name and lose their value, in dicts and in `name: value`, `"name": "value"` and
   command-line `--name value` text, unless the value is a 0/1/true/false flag: a flag cannot carry key
   material, and build options are named after what they act on (`chip_convert_dac_private_key=0` is an
   app build flag shown in the firmware column). Fields merely named `*_key` (`dac_key`, `--hil-cd-key`)
   lose their value only when it looks like key material (bytes, a bytes repr, 8+ bytes of hex or
   base64): the same name also carries a file path (`--dac_key dac.pem`) or a kind (`dac_key=sss-blob`).
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
_SECRET_FIELD = r"[\w.-]*(?:private_?key|priv_?key|aes(?:128|256)?_?key|secret|passphrase|password)[\w.-]*"
_KEY_FIELD = r"[\w.-]*[_-]key"
_SECRET_NAME = re.compile(rf"(?i){_SECRET_FIELD}")
_KEY_NAME = re.compile(rf"(?i){_KEY_FIELD}")
_FIELD_TEXT = re.compile(
    rf"""(?ix)
    (?P<name>(?:(?P<dash>--)|["']?\b)(?P<field>{_SECRET_FIELD}|{_KEY_FIELD})(?(dash)(?:\s*=\s*|\s+)|["']?\s*[:=]\s*))
    (?P<value>"(?:[^"\\]|\\.)*"|'[^']*'|[^\s,;}}\]]+)
    """
)
_FLAG_TEXT = re.compile(r"(?i)0|1|true|false")
_KEY_MATERIAL_TEXT = re.compile(
    rf"""(?ix)
    (?:0x)?[0-9a-f]{{{2 * MIN_SECRET_BYTES},}}             # hex
    |[0-9a-f]{{2}}(?::[0-9a-f]{{2}}){{{MIN_SECRET_BYTES - 1},}}  # colon-separated hex (openssl)
    |b["'].*                                              # a Python bytes repr
    |(?=[a-z+/]*[0-9])(?=[0-9+/]*[a-z])[a-z0-9+/]{{16,}}={{0,2}}  # base64 (a letter and a digit: not a word)
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


def _hides(name: str, value: object) -> bool:
    """Whether field `name` holding `value` loses its value (rule 2; names that say nothing keep it)."""
    if value is None:
        return False
    if isinstance(value, str) and value[:1] in "\"'" and value[-1:] == value[:1] and len(value) >= 2:
        value = value[1:-1]
    if _SECRET_NAME.fullmatch(name):
        if isinstance(value, bool) or (isinstance(value, int) and value in (0, 1)):
            return False
        return not (isinstance(value, str) and _FLAG_TEXT.fullmatch(value.strip()))
    if _KEY_NAME.fullmatch(name):
        if isinstance(value, bytes | bytearray | memoryview):
            return len(value) > 0
        if isinstance(value, int) and not isinstance(value, bool):
            return value.bit_length() > 8 * (MIN_SECRET_BYTES - 1)
        return isinstance(value, str) and bool(_KEY_MATERIAL_TEXT.fullmatch(value.strip()))
    return False


def _mask_field(match: re.Match[str]) -> str:
    value = match["value"]
    if not _hides(match["field"], value):
        return match[0]
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
            k: (REDACTED if isinstance(k, str) and _hides(k, v) else redact(v))
            for k, v in data.items()
        }
    if isinstance(data, list | tuple):
        return type(data)(redact(v) for v in data)  # type: ignore[return-value]
    return data


def is_clean(data: object) -> bool:
    """True when `redact` would change nothing (for assertions and report self-checks)."""
    return redact(data) == data
