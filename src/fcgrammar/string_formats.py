"""JSON Schema string ``format`` values as ECMA-262 regexes (whole-string match), lowered through regex.py.

Every regex here is anchored (``^...$``) and ASCII-only; see docs/json-schema.md for the exact rules and the
few places where a format cannot be expressed as a regular language (and what we do instead):

* ``time``/``date-time``: a leap second (``:60``) is accepted only at 23:59 with offset ``Z``/``±00:00``
  (leap seconds written with another offset are rejected: over-constrained, never under-constrained).
* ``hostname``/``email`` domains: labels of 1..63 LDH characters, no leading/trailing hyphen, and no ``--``
  in positions 3-4 (so punycode ``xn--`` A-labels are rejected: their validity is not regular). The
  253-character total limit is *not* enforced.
"""
from __future__ import annotations

from typing import Dict, Optional

from .errors import SchemaError
from .grammar import Expr
from .regex import pattern_body

_D = "[0-9]"
_YEAR = _D + "{4}"
_LEAP = "(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])|(?:[02468][048]|[13579][26])00)"
_FULL_DATE = (
    "(?:" + _YEAR + "-(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])"
    "|" + _YEAR + "-(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)"
    "|" + _YEAR + "-02-(?:0[1-9]|1[0-9]|2[0-8])"
    "|" + _LEAP + "-02-29)"
)
_FRAC = r"(?:\.[0-9]+)?"
_FULL_TIME = (
    "(?:(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]" + _FRAC + "(?:[Zz]|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])"
    "|23:59:60" + _FRAC + "(?:[Zz]|[+-]00:00))"
)
_DURATION = (
    "P(?:(?:[0-9]+D|[0-9]+M(?:[0-9]+D)?|[0-9]+Y(?:[0-9]+M(?:[0-9]+D)?)?)"
    "(?:T(?:[0-9]+H(?:[0-9]+M(?:[0-9]+S)?)?|[0-9]+M(?:[0-9]+S)?|[0-9]+S))?"
    "|T(?:[0-9]+H(?:[0-9]+M(?:[0-9]+S)?)?|[0-9]+M(?:[0-9]+S)?|[0-9]+S)"
    "|[0-9]+W)"
)
_OCTET = "(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_IPV4 = _OCTET + r"(?:\." + _OCTET + "){3}"
_H16 = "[0-9A-Fa-f]{1,4}"
_LS32 = "(?:" + _H16 + ":" + _H16 + "|" + _IPV4 + ")"


def _h16s(n: int) -> str:
    """n copies of 'h16:'"""
    return "" if n == 0 else "(?:" + _H16 + ":){%d}" % n


def _upto(n: int) -> str:
    """[ *n( h16 ":" ) h16 ]"""
    if n < 0:
        return ""
    inner = _H16 if n == 0 else "(?:" + _H16 + ":){0,%d}" % n + _H16
    return "(?:" + inner + ")?"


_IPV6 = "(?:" + "|".join([
    _h16s(6) + _LS32,
    "::" + _h16s(5) + _LS32,
    _upto(0) + "::" + _h16s(4) + _LS32,
    _upto(1) + "::" + _h16s(3) + _LS32,
    _upto(2) + "::" + _h16s(2) + _LS32,
    _upto(3) + "::" + _H16 + ":" + _LS32,
    _upto(4) + "::" + _LS32,
    _upto(5) + "::" + _H16,
    _upto(6) + "::",
]) + ")"
_A = "[A-Za-z0-9]"
_H = "[A-Za-z0-9-]"
# 1..63 chars, starts and ends alphanumeric, no "--" at positions 3-4 (R-LDH / A-labels are rejected).
_LABEL = "(?:" + _A + "(?:" + _A + "|" + _H + _A + "|" + _H + _H + _A + "|" + _H + "(?:" + _A + _H + "|-" + _A + ")" \
    + _H + "{0,58}" + _A + ")?)"
_HOSTNAME = _LABEL + r"(?:\." + _LABEL + ")*"
_ATEXT = "[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]"
_EMAIL = (
    "(?:" + _ATEXT + r"+(?:\." + _ATEXT + "+)*" + '|"(?:[ !#-\\[\\]-~]|\\\\[ -~])*")'
    "@(?:" + _HOSTNAME + r"|\[" + _IPV4 + r"\]|\[IPv6:" + _IPV6 + r"\])"
)
_PCT = "%[0-9A-Fa-f]{2}"
_PCHAR = "(?:[A-Za-z0-9._~!$&'()*+,;=:@-]|" + _PCT + ")"
_USERINFO = "(?:[A-Za-z0-9._~!$&'()*+,;=:-]|" + _PCT + ")*"
_REGNAME = "(?:[A-Za-z0-9._~!$&'()*+,;=-]|" + _PCT + ")*"
_IPLITERAL = r"\[(?:" + _IPV6 + r"|[Vv][0-9A-Fa-f]+\.[A-Za-z0-9._~!$&'()*+,;=:-]+)\]"
_AUTHORITY = "(?:" + _USERINFO + "@)?(?:" + _IPLITERAL + "|" + _REGNAME + ")(?::[0-9]*)?"
_PATH_ABEMPTY = "(?:/" + _PCHAR + "*)*"
_PATH_ABSOLUTE = "/(?:" + _PCHAR + "+(?:/" + _PCHAR + "*)*)?"
_PATH_ROOTLESS = _PCHAR + "+(?:/" + _PCHAR + "*)*"
_PCHAR_NC = "(?:[A-Za-z0-9._~!$&'()*+,;=@-]|" + _PCT + ")"  # segment-nz-nc: no ':'
_PATH_NOSCHEME = _PCHAR_NC + "+(?:/" + _PCHAR + "*)*"
_QUERY = "(?:" + _PCHAR + "|[/?])*"
_SCHEME = "[A-Za-z][A-Za-z0-9+.-]*"
_URI = (_SCHEME + ":(?://" + _AUTHORITY + _PATH_ABEMPTY + "|" + _PATH_ABSOLUTE + "|" + _PATH_ROOTLESS + ")?"
        + r"(?:\?" + _QUERY + ")?(?:#" + _QUERY + ")?")
_RELATIVE_REF = ("(?://" + _AUTHORITY + _PATH_ABEMPTY + "|" + _PATH_ABSOLUTE + "|" + _PATH_NOSCHEME + ")?"
                 + r"(?:\?" + _QUERY + ")?(?:#" + _QUERY + ")?")
# RFC 6570 URI Template (level 4): literals (ASCII but CTL, SP, " % < > \\ ^ ` { | }; ucschar; iprivate;
# pct-encoded; the apostrophe too, per erratum 6937, as the JSON-Schema-Test-Suite has it) and expressions
# "{" [operator] varspec *("," varspec) "}"; a prefix modifier is 1-9999.
_UCS_PRIVATE = ("\u00a0-\ud7ff\ue000-\ufdcf\ufdf0-\uffef"  # ucschar, iprivate (plane 14 from U+E1000)
                + "".join(f"{chr(p << 16 | (0x1000 if p == 14 else 0))}-{chr(p << 16 | 0xFFFD)}" for p in range(1, 17)))
_TEMPLATE_LITERAL = "(?:[!#$&'()*+,\\-./0-9:;=?@A-Z\\[\\]_a-z~" + _UCS_PRIVATE + "]|" + _PCT + ")"
_VARCHAR = "(?:[A-Za-z0-9_]|" + _PCT + ")"
_VARSPEC = _VARCHAR + "(?:\\.?" + _VARCHAR + ")*(?::[1-9][0-9]{0,3}|\\*)?"
_URI_TEMPLATE = "(?:" + _TEMPLATE_LITERAL + "|\\{[+#./;?&=,!@|]?" + _VARSPEC + "(?:," + _VARSPEC + ")*\\})*"
# OpenAPI "byte": base64 (RFC 4648, with padding)
_BASE64 = "(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?"
_JSON_POINTER = "(?:/(?:[^~/]|~[01])*)*"
_REL_JSON_POINTER = "(?:0|[1-9][0-9]*)(?:#|" + _JSON_POINTER + ")"

FORMAT_REGEXES: Dict[str, str] = {
    "date": "^" + _FULL_DATE + "$",
    "time": "^" + _FULL_TIME + "$",
    "date-time": "^" + _FULL_DATE + "[Tt]" + _FULL_TIME + "$",
    "duration": "^" + _DURATION + "$",
    "email": "^" + _EMAIL + "$",
    "hostname": "^" + _HOSTNAME + "$",
    "ipv4": "^" + _IPV4 + "$",
    "ipv6": "^" + _IPV6 + "$",
    "uuid": "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$",
    "uri": "^" + _URI + "$",
    "uri-reference": "^(?:" + _URI + "|" + _RELATIVE_REF + ")$",
    "json-pointer": "^" + _JSON_POINTER + "$",
    "relative-json-pointer": "^" + _REL_JSON_POINTER + "$",
    "uri-template": "^" + _URI_TEMPLATE + "$",
    "byte": "^" + _BASE64 + "$",
}

# Formats defined by JSON Schema 2020-12 that we cannot express (SchemaError unless lenient=True).
UNSUPPORTED_FORMATS = frozenset({"idn-email", "idn-hostname", "iri", "iri-reference", "regex"})


def format_regex(name: str) -> Optional[str]:
    return FORMAT_REGEXES.get(name)


def format_body(name: str, min_len: int = 0, max_len: Optional[int] = None, *, pointer: str = "",
                max_repetition: int = 10_000) -> Expr:
    """IR for the inside of a JSON string whose value is a valid ``name`` (length bound intersected)."""
    rx = FORMAT_REGEXES.get(name)
    if rx is None:
        why = "is not supported" if name in UNSUPPORTED_FORMATS else "is unknown"
        raise SchemaError(f"format {name!r} {why} (supported: {', '.join(sorted(FORMAT_REGEXES))})",
                          pointer, "format")
    return pattern_body(rx, min_len, max_len, pointer=pointer, keyword="format",
                        max_repetition=max(max_repetition, 1000), full_match=True)
