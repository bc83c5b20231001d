"""JSON Schema -> grammar: per-keyword accept/reject checks through the C++ engine (byte level).

Every "valid" instance is checked in several spellings (compact json.dumps, ensure_ascii=True \\u escapes)
and, as a guard against mistakes in the tests themselves, every expectation is first confirmed with the
``jsonschema`` reference validator (with format checking) unless the test documents a departure.
"""
from __future__ import annotations

import base64
import binascii
import json
import random
import re
import time
import warnings

import jsonschema
import pytest

from fcgrammar._testing import accepts, compile_bytes, compile_bytes_or_none
from fcgrammar.errors import LimitError, SchemaError
from fcgrammar.grammar import NOTHING
from fcgrammar.json_schema import ANY_ORDER_MAX_PROPERTIES, SchemaWarning, schema_to_grammar

from conftest import DATA_DIR, data_path

_FORMATS = jsonschema.Draft202012Validator.FORMAT_CHECKER


def _validator_ok(schema, instance) -> bool:
    return jsonschema.Draft202012Validator(schema, format_checker=_FORMATS).is_valid(instance)


def _compiled(schema, **opts):
    return compile_bytes_or_none(schema_to_grammar(schema, **opts))


def _spellings(v, **dump):
    out = {json.dumps(v, separators=(",", ":"), ensure_ascii=False, **dump),
           json.dumps(v, separators=(",", ":"), ensure_ascii=True, **dump)}
    return sorted(out)


def check(schema, valid=(), invalid=(), *, oracle=True, **opts):
    """valid instances accepted in every spelling, invalid ones rejected."""
    cg = _compiled(schema, **opts)
    for v in valid:
        if oracle:
            assert _validator_ok(schema, v), f"test bug: jsonschema rejects {v!r}"
        for text in _spellings(v):
            assert cg is not None and accepts(cg, text), f"valid instance rejected: {text}"
    for v in invalid:
        if oracle:
            assert not _validator_ok(schema, v), f"test bug: jsonschema accepts {v!r}"
        text = json.dumps(v, separators=(",", ":"), ensure_ascii=False)
        assert cg is None or not accepts(cg, text), f"invalid instance accepted: {text}"
    return cg


def texts(schema, ok=(), bad=(), **opts):
    """raw JSON texts accepted / rejected"""
    cg = _compiled(schema, **opts)
    for t in ok:
        assert cg is not None and accepts(cg, t), f"text rejected: {t!r}"
    for t in bad:
        assert cg is None or not accepts(cg, t), f"text accepted: {t!r}"


# ------------------------------------------------------------------------------------------- types


def test_type_each():
    check({"type": "null"}, [None], [0, False, "", [], {}])
    check({"type": "boolean"}, [True, False], [0, None, "true"])
    check({"type": "string"}, ["", "a", "é\n\"\\😀\u0000"], [0, None, []])
    check({"type": "integer"}, [0, -1, 12345678901234567890, 1.0, -0.0], [1.5, "1", None])
    check({"type": "number"}, [0, -1.5, 1e-7, 2.5e300, 3], ["1", None, True])
    check({"type": "array"}, [[], [1, "a", [None, {}]]], [{}, "[]"])
    check({"type": "object"}, [{}, {"a": [1, {"b": None}]}], [[], "{}"])


def test_type_list_and_nullable():
    check({"type": ["string", "null"]}, ["x", None], [1, [], True])
    check({"type": "string", "nullable": True}, ["x", None], [1], oracle=False)
    check({"type": ["integer", "boolean"], "minimum": 3}, [3, 7, True], [2, "x", None])


def test_any_value_schemas():
    for s in (True, {}, {"description": "anything", "title": "t", "default": 1, "examples": [1]}):
        check(s, [None, 1, -2.5e-3, "s", [1, [2, {"x": {}}]], {"k": [True]}], [])
    texts(True, ok=['{"a":{"b":[1,2,{"c":null}]}}', '"\\u00e9\\ud83d\\ude00"', "-0.0e+0"],
          bad=['{"a":1,}', "[1,]", "01", "1.", ".5", "+1", "nul", "'x'", '"\x01"'])


def test_false_schema_is_empty():
    g = schema_to_grammar(False)
    assert g.rules[0] == NOTHING
    check({"type": "object", "properties": {"a": False}}, [{}, {"b": 1}], [{"a": 1}])
    check({"properties": {"a": {"type": "integer"}}, "required": ["a"], "additionalProperties": False,
           "allOf": [{"properties": {"a": {"type": "string"}}}]}, [], [{"a": 1}, {"a": "x"}])


def test_schema_as_json_text():
    check('{"type": "integer", "maximum": 3}', [3], [4], oracle=False)


# ------------------------------------------------------------------------------------------ strings


def test_string_lengths_count_code_points():
    s = {"type": "string", "minLength": 2, "maxLength": 3}
    check(s, ["ab", "abc", "é😀", "😀😀😀", "\n\t"], ["a", "abcd", "😀", "😀😀😀😀", ""])
    # a surrogate-pair escape is one character, never two lone surrogates
    texts(s, ok=['"\\ud83d\\ude00x"', '"\\u00e9\\u00E9"'], bad=['"\\ud83d\\ude00"', '"\\ud800\\udc00"'])
    check({"type": "string", "maxLength": 0}, [""], ["a"])


def _random_json_string(rng: random.Random) -> str:
    """A JSON string literal of 0-4 code points, each spelled raw or escaped in a random hex case; sometimes a
    lone surrogate escape, a raw control character or a broken escape (the invalid texts)."""
    out = ['"']
    for _ in range(rng.randrange(5)):
        c = rng.choice([0x41, 0x22, 0x5C, 0x0A, 0x1F, 0x7F, 0xE9, 0x7FF, 0x800, 0xD7FF, 0xE000, 0xFFFF, 0x10000,
                        0x1F600, 0x10FFFF, 0xD800, 0xDBFF, 0xDC00, 0xDFFF, rng.randrange(0x110000)])
        kind = rng.randrange(4)
        if 0xD800 <= c <= 0xDFFF or kind == 0:  # \uXXXX (surrogate pairs for astral code points)
            units = [c] if c < 0x10000 else [0xD800 + ((c - 0x10000) >> 10), 0xDC00 + ((c - 0x10000) & 0x3FF)]
            for u in units:
                h = f"{u:04x}"
                out.append("\\u" + "".join(x.upper() if rng.random() < 0.5 else x for x in h))
        elif kind == 1 and chr(c) in '"\\\n':
            out.append({'"': '\\"', "\\": "\\\\", "\n": "\\n"}[chr(c)])
        elif kind == 2 and rng.random() < 0.2:
            out.append(rng.choice(["\\x41", "\\u12", "\\", "\n", "\\ud83d\\u0041"]))
        else:
            out.append(chr(c))
    out.append('"')
    return "".join(out)


@pytest.mark.parametrize("schema, check_value", [
    ({"type": "string", "minLength": 1, "maxLength": 3}, lambda s: 1 <= len(s) <= 3),
    ({"type": "string", "pattern": "^[A-Zé-ÿ\\u0800-\\uffff]{0,2}$"},
     lambda s: len(s) <= 2 and all("A" <= ch <= "Z" or "é" <= ch <= "ÿ" or "\u0800" <= ch <= "\uffff" for ch in s)),
])
def test_bounded_strings_exact_on_random_spellings(schema, check_value):
    """Each counted character is one code point read by a minimal DFA (raw UTF-8, short escapes, \\u in any hex
    case, surrogate pairs; never a lone surrogate): the language is compared with json.loads on random texts."""
    cg = _compiled(schema)
    rng = random.Random(7)
    for _ in range(3000):
        text = _random_json_string(rng)
        try:
            value = json.loads(text)
            ok = not any(0xD800 <= ord(ch) <= 0xDFFF for ch in value) and check_value(value)
        except ValueError:
            ok = False
        assert accepts(cg, text.encode("utf-8", "surrogatepass")) == ok, text


def test_bounded_string_size_per_character():
    """maxLength unrolls one copy of the code point DFA per position: about 20 NFA states (73 before the
    fragment was minimized), ~1 KB per position."""
    cg = _compiled({"type": "string", "maxLength": 1000})
    assert cg.num_nfa_states <= 21 * 1000
    assert cg.memory_bytes <= 1100 * 1000
    # beyond max_repetition: a LimitError that names the bound, where it sits and the option
    with pytest.raises(LimitError, match=r"maxLength 65535 exceeds max_repetition=10000 at #/properties/d .*"
                                         r"max_repetition= allows it"):
        schema_to_grammar({"properties": {"d": {"type": "string", "maxLength": 65535}}})


def test_string_escapes_all_accepted():
    texts({"type": "string"}, ok=['"\\"\\\\\\/\\b\\f\\n\\r\\t"', '"\\u0041\\u00e9\\u00C9\\uD83D\\uDE00"', '"é"'],
          bad=['"\\x41"', '"\\u12"', '"\n"', '"\\a"', "'a'"])


def test_pattern_search_semantics():
    check({"type": "string", "pattern": "abc"}, ["abc", "xxabcyy", "abcabc"], ["ab", "acb", ""])
    check({"type": "string", "pattern": "^abc"}, ["abc", "abcd"], ["xabc"])
    check({"type": "string", "pattern": "abc$"}, ["abc", "xabc"], ["abcx"])
    check({"type": "string", "pattern": "^[a-z]+$"}, ["a", "abc"], ["", "aB", "ab1"])
    check({"type": "string", "pattern": "^a|b$"}, ["ax", "xb", "ab"], ["xa", "bx"])
    check({"pattern": "^[0-9]+$"}, ["12", 5, None], ["1a"])  # pattern only constrains strings


def test_pattern_ecma_semantics():
    # (jsonschema uses Python's re, whose \d \w . $ differ from ECMA-262: no oracle here)
    check({"type": "string", "pattern": r"^\d+$"}, ["0123"], ["\u0664", "1a"], oracle=False)  # \d is ASCII
    check({"type": "string", "pattern": r"^\w+$"}, ["a_Z9"], ["é", "a-b"], oracle=False)
    check({"type": "string", "pattern": r"^\s$"}, [" ", "\t", "\u00a0", "\u2003", "\ufeff"], ["a", "\u0001"],
          oracle=False)
    check({"type": "string", "pattern": "^.$"}, ["a", "😀", "é"], ["\n", "\r", "\u2028", "ab"], oracle=False)
    check({"type": "string", "pattern": "^abc$"}, ["abc"], ["abc\n"], oracle=False)  # $: end of input only
    check({"type": "string", "pattern": r"^\cC$"}, ["\u0003"], ["cC"], oracle=False)
    check({"type": "string", "pattern": r"^\p{Lu}\p{Ll}+$"}, ["Émile", "Ab"], ["ab", "A1"], oracle=False)
    check({"type": "string", "pattern": "^[^]$"}, ["\n", "x"], ["", "xy"], oracle=False)
    check({"type": "string", "pattern": "^(?<year>\\d{4})-\\d{2}$"}, ["2024-01"], ["24-01"], oracle=False)
    check({"type": "string", "pattern": "^🐲*$"}, ["", "🐲🐲"], ["🐉", "D"])


def test_pattern_classes_groups_repeats():
    s = {"type": "string", "pattern": r"^(\([0-9]{3}\))?[0-9]{3}-[0-9]{4}$"}
    check(s, ["555-1212", "(888)555-1212"], ["(888)555-1212 ext. 532", "(800)FLOWERS", "555-12123"])
    check({"type": "string", "pattern": "^a{2,3}(b|cd)*?[^x-z]?$"}, ["aa", "aaab", "aacdcdbq", "aaaa"],
          ["a", "aaaaa", "aacx", "aabx"])


@pytest.mark.parametrize("pattern,why", [
    ("(?=a)b", "lookahead"), ("(a)\\1", "backreference"), ("a\\bb", "word boundar"), ("(?i)a", "flags"),
    ("a^b", "anchors"), ("[", "invalid"), ("a++", "possessive"), ("\\p{Script=Greek}", "general categories"),
])
def test_pattern_unsupported(pattern, why):
    with pytest.raises(SchemaError) as ei:
        schema_to_grammar({"properties": {"p": {"type": "string", "pattern": pattern}}})
    assert ei.value.keyword == "pattern" and ei.value.pointer == "#/properties/p"


def test_pattern_with_length_exact():
    check({"type": "string", "pattern": "^[a-z]+$", "maxLength": 3}, ["a", "abc"], ["abcd", "", "ab1"])
    check({"type": "string", "pattern": "^[a-z]+$", "minLength": 2, "maxLength": 4}, ["ab", "abcd"],
          ["a", "abcde"])
    check({"type": "string", "pattern": "abc", "maxLength": 5}, ["abc", "xabcx", "xxabc"], ["xxxabc", "ab"])
    check({"type": "string", "pattern": "^x", "minLength": 3}, ["xab", "xabcdef"], ["xa", "axb"])
    check({"type": "string", "pattern": "^[0-9]{3}-[0-9]{2}$", "maxLength": 5}, [], ["123-45"])
    check({"type": "string", "format": "date", "maxLength": 10}, ["2024-02-29"], ["2023-02-29"])


def test_pattern_with_length_not_expressible():
    s = {"type": "string", "pattern": "^[a-z]+@[a-z]+$", "maxLength": 300}
    with pytest.raises(SchemaError) as ei:
        schema_to_grammar(s)
    assert ei.value.keyword == "pattern" and "minLength/maxLength" in str(ei.value)
    # lenient drops the length (with a warning), never the pattern
    with pytest.warns(SchemaWarning, match="minLength/maxLength"):
        cg = compile_bytes(schema_to_grammar(s, lenient=True))
    assert accepts(cg, '"ab@cd"') and not accepts(cg, '"abcd"')


def test_several_patterns_error():
    with pytest.raises(SchemaError) as ei:
        schema_to_grammar({"allOf": [{"pattern": "^a"}, {"pattern": "b$"}]})
    assert ei.value.keyword == "pattern"
    check({"allOf": [{"pattern": "^a"}, {"pattern": "^a"}]}, ["ab"], ["b"])  # the same pattern twice is fine


# ------------------------------------------------------------------------------------------- formats

_FORMAT_CASES = {
    "date": (["2020-02-29", "0400-02-29", "1999-12-31"], ["2021-02-29", "2020-13-01", "2020-1-01", "2020-04-31"]),
    "time": (["08:30:06Z", "23:59:60Z", "12:00:00.5+05:30", "00:00:00z"], ["24:00:00Z", "08:30:06", "22:59:60Z"]),
    "date-time": (["1963-06-19T08:30:06.283185Z", "1963-06-19t08:30:06z"], ["1963-06-19 08:30:06Z",
                                                                             "1990-02-31T15:59:59Z"]),
    "duration": (["P4DT12H30M5S", "PT1M", "P2W", "P1Y2M"], ["P", "PT", "P1Y2D", "P2D1Y", "PT0.5S"]),
    "email": (["joe.bloggs@example.com", '"joe bloggs"@example.com', "a@[127.0.0.1]"],
              ["2962", ".a@example.com", "a..b@example.com", "a@b_c.com"]),
    "hostname": (["www.example.com", "a--b.com", "1host"], ["-a.com", "a-.com", "a..b", "host_name", ""]),
    "ipv4": (["192.168.0.1", "0.0.0.0", "255.255.255.255"], ["256.1.1.1", "01.2.3.4", "1.2.3", "1.2.3.4.5"]),
    "ipv6": (["::1", "::", "1:2:3:4:5:6:7:8", "::ffff:192.168.0.1", "fe80::a"],
             ["1:2:3:4:5:6:7", "1::2::3", ":2:3:4:5:6:7:8", "12345::", "::ffff:192.168.0.01"]),
    "uuid": (["2EB8AA08-AA98-11EA-B4AA-73B441D16380", "00000000-0000-0000-0000-000000000000"],
             ["2eb8aa08-aa98-11ea-b4aa-73b441d1638", "2eb8aa08aa9811eab4aa73b441d16380"]),
    "uri": (["http://foo.bar/?baz=qux#quux", "mailto:a@b.c", "urn:isbn:0451450523", "ldap://[2001:db8::7]/c=GB"],
            ["//foo.bar", "/abc", "abc", "http:// x.com", "1http://a.b", "http://a.b/%6G"]),
    # RFC 6570's own examples (sections 1.2 and 3.2) and broken expressions
    "uri-template": (["http://example.com/~{username}/", "{+path}/here", "{/list*}", "{?x,y:3,empty}",
                      "X{.var:3}", "{#keys*}", "map?{x,y}", "{;hello:5}", "{%41b.c_d}", "/é/{x}", "a'b", ""],
                     ["{}", "{x", "x}", "{ x}", "{x:0}", "{x:10000}", "{x,}", "a b", "{x*:3}", "<{x}>", "{x.}",
                      "%zz", "{.x}y}", "a\\b"]),
    "byte": (["", "YQ==", "YWI=", "YWJj", "+/+/", "SGVsbG8gd29ybGQ="], ["Y", "YQ=", "YQ", "YWJj=", "Y Q==",
                                                                     "YQ==YQ==", "YQ==\n", "Y-_="]),
}


@pytest.mark.parametrize("fmt", sorted(_FORMAT_CASES))
def test_formats(fmt):
    good, bad = _FORMAT_CASES[fmt]
    # jsonschema's format checker needs optional packages for several formats: no oracle here
    check({"type": "string", "format": fmt}, good, bad, oracle=False)
    check({"format": fmt}, [12, None, {}], [])  # formats only constrain strings


def test_format_byte_against_base64():
    """OpenAPI "byte" is base64 with padding: random texts over its alphabet are accepted iff Python's strict
    decoder takes them, their length is a multiple of 4 and the padding is at most two trailing '=' (the
    decoder ignores excess padding)."""
    cg = _compiled({"type": "string", "format": "byte"})
    rng = random.Random(3)
    for _ in range(3000):
        text = "".join(rng.choice("AQgw+/=9") for _ in range(rng.randrange(13)))
        try:
            base64.b64decode(text, validate=True)
            data = text.rstrip("=")
            ok = len(text) % 4 == 0 and len(text) - len(data) <= 2 and "=" not in data
        except binascii.Error:
            ok = False
        assert accepts(cg, json.dumps(text)) == ok, text


def test_format_unknown_and_annotation_only():
    with pytest.raises(SchemaError) as ei:
        schema_to_grammar({"properties": {"x": {"type": "string", "format": "color"}}})
    assert ei.value.keyword == "format" and ei.value.pointer == "#/properties/x"
    with pytest.raises(SchemaError):
        schema_to_grammar({"type": "string", "format": "idn-email"})
    check({"type": "integer", "format": "int32"}, [1, 2 ** 40], [])  # OpenAPI numeric formats: annotations
    check({"type": "string", "format": "binary"}, ["\x00\xff any text"], [1])


# ------------------------------------------------------------------------------------------- numbers


def test_integer_bounds():
    check({"type": "integer", "minimum": -15, "maximum": 120}, [-15, -9, 0, 7, 99, 100, 120],
          [-16, -100, 121, 200, 1000, 1.5])
    check({"type": "integer", "exclusiveMinimum": 0, "exclusiveMaximum": 10}, [1, 9], [0, 10, -1])
    check({"type": "integer", "minimum": 1.5, "maximum": 3.5}, [2, 3], [1, 4])
    check({"type": "integer", "minimum": 10 ** 20}, [10 ** 20, 10 ** 30], [10 ** 20 - 1, 0, -5])
    check({"type": "integer", "maximum": -3}, [-3, -1000], [-2, 0, 5])
    check({"type": "integer", "minimum": 5, "maximum": 4}, [], [4, 5])
    texts({"type": "integer", "minimum": 0, "maximum": 10}, ok=["0", "-0", "10", "3.0", "3.000"],
          bad=["00", "01", "1e1", "-1", "11", "3.5", "3."])


def test_integer_spellings():
    texts({"type": "integer"}, ok=["1", "-1", "1.0", "1.00", "-0", "123456789012345678901234567890"],
          bad=["1.5", "1e-3", "01", "1.", "+1", "0x1", "1e3"])  # no exponents (documented departure)


_DRAFT4 = "http://json-schema.org/draft-04/schema#"


@pytest.mark.parametrize("schema, ok, bad", [
    ({"type": "integer"}, ["1", "-0", "12"], ["1.0", "-0.0", "1.5"]),
    ({"type": "integer", "minimum": 0, "maximum": 9}, ["3", "0"], ["3.0", "10"]),
    ({"type": "integer", "multipleOf": 5}, ["10", "-5"], ["10.0", "11"]),
    ({"type": "integer", "multipleOf": 5, "minimum": 0, "maximum": 20}, ["10", "0", "-0"], ["10.0", "0.0"]),
    ({"type": "integer", "enum": [1, 2.0, "a"]}, ["1", "2"], ["1.0", "2.0", '"a"']),
    ({"type": ["integer", "string"]}, ["1", '"x"'], ["1.0"]),
    ({"type": "object", "properties": {"a": {"type": "integer", "description": "d"}}}, ['{"a":1}'],
     ['{"a":1.0}']),
    # a number that multipleOf makes integral is still a number: 1.0 is valid
    ({"type": "number", "multipleOf": 1}, ["1", "1.0"], ["1.5"]),
    ({"enum": [1]}, ["1", "1.0"], ["2"]),
])
def test_draft4_integers_have_no_fraction(schema, ok, bad):
    """Drafts 3 and 4 define an integer as a JSON number without a fraction part; a root "$schema" naming
    them is honoured (draft 6 and later: 1.0 is an integer, as the unmarked schema keeps)."""
    s4 = {"$schema": _DRAFT4, **schema}
    v4 = jsonschema.Draft4Validator(s4)
    for t in ok:
        assert v4.is_valid(json.loads(t)), f"test bug: {t}"
    for t in bad:
        assert not v4.is_valid(json.loads(t)), f"test bug: {t}"
    texts(s4, ok=ok, bad=bad)
    texts({"$schema": "http://json-schema.org/draft-03/schema#", **schema}, ok=ok, bad=bad)
    # the same schema without the declaration (or declaring a later draft) keeps 1.0 as an integer
    for s in (schema, {"$schema": "http://json-schema.org/draft-07/schema#", **schema}):
        texts(s, ok=ok + [t for t in bad if jsonschema.Draft7Validator(s).is_valid(json.loads(t))])


def test_number_bounds_decimal():
    s = {"type": "number", "minimum": -1.5, "exclusiveMaximum": 2.25}
    check(s, [-1.5, -1.4999, -1, 0, 0.5, 2, 2.2, 2.2499999], [-1.5001, -2, 2.25, 2.3, 3, 100])
    texts(s, ok=["2.24", "2.2", "-1.50", "-0", "0.000", "2.2499"], bad=["2.25", "2.250", "-1.51", "1e0"])
    check({"type": "number", "exclusiveMinimum": 0}, [1e-7, 0.001, 5, 2.5e300], [0, -0.0, -1, -1e-7])
    check({"type": "number", "minimum": 0}, [0, -0.0, 1e-7, 3], [-1e-7, -2])
    check({"type": "number", "exclusiveMaximum": 0}, [-1e-7, -3], [0, 1e-9])
    texts({"type": "number", "exclusiveMinimum": 0}, ok=["1e-05", "2E+300", "0.5e-99"], bad=["1e-999", "0e5"])
    # other bounds: plain decimals only (documented departure: exponent forms are rejected)
    texts({"type": "number", "minimum": 0, "maximum": 1}, ok=["0.00001", "1.0"], bad=["1e-05", "2"])
    check({"type": "number", "minimum": 0.1, "maximum": 0.1}, [0.1], [0.11, 0.09])
    check({"type": "number", "minimum": 3, "exclusiveMinimum": 3}, [3.01, 4], [3])
    check({"type": "number", "maximum": 1e308}, [1, -100000.5, 10 ** 300], [10 ** 309])


def test_number_unbounded_exponents():
    texts({"type": "number"}, ok=["1e5", "-2.5E-3", "0.0", "1E+10", "-0"], bad=["1e", "1.e5", ".1", "1.5.2"])


def test_multiple_of():
    check({"type": "integer", "multipleOf": 2}, [0, 2, -4, 1000], [1, 3, -7])
    check({"type": "integer", "multipleOf": 25}, [0, 25, 50, 175, 1000], [5, 130])
    check({"type": "integer", "multipleOf": 3, "minimum": 0, "maximum": 30}, [0, 3, 30], [1, 31, 33])
    check({"type": "number", "multipleOf": 0.01, "minimum": 0, "maximum": 10}, [0, 0.01, 9.99, 10, 5.5],
          [0.001, 10.01, -0.01])
    check({"type": "number", "multipleOf": 0.1}, [0.1, 2, -3.4], [0.01, 1.05])
    check({"multipleOf": 1e-8, "type": "integer"}, [1, 12345], [1.5])
    with pytest.raises(SchemaError) as ei:
        schema_to_grammar({"type": "number", "multipleOf": 1.5})
    assert ei.value.keyword == "multipleOf"
    with pytest.raises(SchemaError):
        schema_to_grammar({"type": "integer", "multipleOf": 7})


# -------------------------------------------------------------------------------------- enum, const


def test_enum_const():
    check({"enum": ["a", 1, None, [1, "x"], {"k": True}]}, ["a", 1, 1.0, None, [1, "x"], {"k": True}],
          ["b", 2, True, [1], {"k": False}, {}])
    check({"const": "é\"\n"}, ["é\"\n"], ["é", ""])
    texts({"const": "é"}, ok=['"é"', '"\\u00e9"', '"\\u00E9"'], bad=['"e"'])
    check({"const": 1.5}, [1.5], [1.55])
    texts({"const": 2}, ok=["2", "2.0", "2.00"], bad=["2.5", "20"])
    texts({"const": 1e16}, ok=["10000000000000000", "1e+16"], bad=["1e16x"])
    check({"enum": [0]}, [0, -0.0, 0.0], [False])
    check({"const": False}, [False], [0, None])


def test_enum_filtered_by_siblings():
    check({"type": "string", "enum": ["a", 1, "bb"], "maxLength": 1}, ["a"], ["bb", 1])
    check({"enum": [1, 5, 10], "minimum": 4}, [5, 10], [1])
    check({"type": "integer", "enum": ["1", "2"]}, [], ["1", 1])


# -------------------------------------------------------------------------------------------- arrays


def test_arrays():
    check({"type": "array", "items": {"type": "integer"}}, [[], [1, 2, 3]], [[1, "a"], ["x"]])
    check({"type": "array", "minItems": 2, "maxItems": 3}, [[1, 2], [1, 2, 3]], [[], [1], [1, 2, 3, 4]])
    check({"type": "array", "prefixItems": [{"type": "integer"}, {"type": "string"}]},
          [[], [1], [1, "a"], [1, "a", None, {}]], [["a"], [1, 2]])
    check({"type": "array", "prefixItems": [{"type": "integer"}, {"type": "string"}], "items": False},
          [[1], [1, "a"]], [[1, "a", 2]])
    check({"type": "array", "prefixItems": [{"type": "integer"}], "items": {"type": "boolean"},
           "minItems": 2, "maxItems": 3}, [[1, True], [1, True, False]], [[1], [1, 2], [1, True, True, True]])
    check({"type": "array", "items": False}, [[]], [[1]])
    check({"type": "array", "items": {"type": "integer"}, "uniqueItems": False}, [[1, 1]], [])
    check({"type": "array", "uniqueItems": True, "maxItems": 1}, [[], [1]], [[1, 1]])
    check({"items": [{"type": "string"}], "additionalItems": {"type": "integer"}}, [["a", 1, 2]], [],
          oracle=False)  # draft 2019 tuple form


def test_unique_items_unsupported():
    with pytest.raises(SchemaError) as ei:
        schema_to_grammar({"properties": {"tags": {"type": "array", "uniqueItems": True}}})
    assert ei.value.keyword == "uniqueItems" and ei.value.pointer == "#/properties/tags"
    assert "unsupported keyword 'uniqueItems'" in str(ei.value) and "#/properties/tags" in str(ei.value)


# ------------------------------------------------------------------------------------------- objects

_PERSON = {"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"},
                                            "tags": {"type": "array", "items": {"type": "string"}}},
           "required": ["name"]}


def test_object_schema_order():
    s = dict(_PERSON, additionalProperties=False)
    check(s, [{"name": "a"}, {"name": "a", "age": 3}, {"name": "a", "tags": ["x"]},
              {"name": "a", "age": 3, "tags": []}], [{}, {"age": 3}, {"name": 1}, {"name": "a", "x": 1}])
    # declared order only (any_order=False): members out of schema order are rejected
    texts(s, bad=['{"age":3,"name":"a"}', '{"name":"a","name":"b"}'])
    texts(s, ok=['{"\\u006eame":"a"}'])  # keys may be escaped


def test_additional_properties():
    s = dict(_PERSON)  # additionalProperties missing = true
    check(s, [{"name": "a", "zzz": [1, {}]}, {"name": "a", "age": 1, "x": None, "y": 2}], [{"name": "a", "age": "x"}])
    # an additional key may not be a declared name, however it is spelled
    texts(s, bad=['{"name":"a","age":"x"}', '{"name":"a","a\\u0067e":"x"}', '{"name":"a","x":1,"age":2}'],
          ok=['{"name":"a","agex":"x"}', '{"name":"a","ag":"x"}', '{"name":"a","":1}'])
    check(dict(_PERSON, additionalProperties={"type": "integer"}), [{"name": "a", "x": 1}],
          [{"name": "a", "x": "1"}])
    check({"type": "object", "additionalProperties": {"type": "string"}}, [{}, {"a": "b"}], [{"a": 1}])


def test_additional_members_with_no_required_member():
    """Declared members (all optional) in schema order, then additional ones; or additional ones only."""
    props = {"unit": {"type": "string"}, "days": {"type": "integer"}}
    s = {"type": "object", "properties": props}
    cg = check(s, [{}, {"unit": "c"}, {"days": 1}, {"unit": "c", "days": 1}, {"x": 1}, {"x": 1, "y": [2]},
                   {"unit": "c", "x": 1}, {"days": 1, "x": 1, "y": 2}], [{"days": "1"}, {"x": 1, "unit": 2}])
    texts(s, bad=['{"x":1,"unit":"c"}', '{"unit":"c","x":1,"days":2}', '{"days":1,"unit":"c"}', '{,"x":1}',
                  '{"x":1,}', '{"u\u006eit":1}'],
          ok=['{"x":1,"y":2,"z":3}', '{"unit":"c","days":2,"x":{}}', '{"un":1}'])
    # The additional member (its key is a trie of the declared names) is built twice: as the first member
    # and after a comma; not a third time for "an additional member first" beside "a declared one first".
    any_value = _compiled({}).num_nfa_states
    one_required = _compiled(dict(s, required=["unit"])).num_nfa_states
    member = one_required - _compiled(dict(s, required=["unit"], additionalProperties=False)).num_nfa_states - any_value
    assert member > 50
    closed = _compiled(dict(s, additionalProperties=False)).num_nfa_states
    assert cg.num_nfa_states - closed <= any_value + 2 * member + 8


def test_additional_key_exclusion_prefixes():
    s = {"type": "object", "properties": {n: {"type": "null"} for n in ("ab", "abc", "b", "é😀")},
         "additionalProperties": {"type": "integer"}}
    cg = _compiled(s, any_order=True, separators=(", ", ": "))
    for key in ("", "a", "abcd", "abd", "ba", "c", "é", "é😀x", "😀"):
        assert accepts(cg, json.dumps({key: 1})) and accepts(cg, json.dumps({key: 1}, ensure_ascii=False)), key
    for key in ("ab", "abc", "b", "é😀"):
        assert not accepts(cg, json.dumps({key: 1})) and not accepts(cg, json.dumps({key: 1}, ensure_ascii=False))
        assert accepts(cg, json.dumps({key: None}))


def test_required_not_declared():
    check({"type": "object", "required": ["a"]}, [{"a": 1}, {"a": None, "b": 2}], [{}, {"b": 1}])
    check({"type": "object", "required": ["a"], "additionalProperties": False}, [], [{"a": 1}, {}])


def test_optional_members_and_commas():
    s = {"type": "object", "properties": {k: {"type": "integer"} for k in "abcd"}, "required": ["c"],
         "additionalProperties": False}
    check(s, [{"c": 1}, {"a": 1, "c": 2}, {"a": 1, "b": 2, "c": 3, "d": 4}, {"b": 1, "c": 2, "d": 3}],
          [{}, {"a": 1}, {"d": 1}])
    texts(s, bad=['{,"c":1}', '{"c":1,}', '{"a":1,,"c":1}'])


def test_min_max_properties():
    check({"type": "object", "minProperties": 1, "maxProperties": 2}, [{"a": 1}, {"a": 1, "b": 2}],
          [{}, {"a": 1, "b": 2, "c": 3}])
    check({"type": "object", "properties": {"a": {}}, "required": ["a"], "maxProperties": 2},
          [{"a": 1}, {"a": 1, "b": 2}], [{"a": 1, "b": 2, "c": 3}])
    check({"type": "object", "properties": {"a": {}}, "maxProperties": 1, "additionalProperties": False},
          [{}, {"a": 1}], [])  # always satisfied
    with pytest.raises(SchemaError) as ei:
        schema_to_grammar({"type": "object", "properties": {"a": {}, "b": {}}, "minProperties": 1})
    assert ei.value.keyword == "minProperties"


def test_property_names():
    check({"type": "object", "propertyNames": {"maxLength": 3}}, [{}, {"abc": 1}], [{"abcd": 1}])
    check({"type": "object", "propertyNames": {"pattern": "^a+$"}}, [{"a": 1, "aa": 2}], [{"b": 1}])
    check({"type": "object", "properties": {"x": {}}, "propertyNames": {"enum": ["x", "y"]}},
          [{"x": 1}, {"y": 2}, {"x": 1, "y": 2}], [{"z": 1}])
    check({"type": "object", "propertyNames": False}, [{}], [{"a": 1}])


def test_non_bmp_keys_and_exclusion():
    s = {"type": "object", "properties": {"😀": {"type": "string"}}, "additionalProperties": {"type": "integer"}}
    check(s, [{"😀": "x"}, {"😀": "x", "a": 1}, {"😁": 1}], [{"😀": 1}])
    texts(s, ok=['{"\\ud83d\\ude00":"x"}', '{"\\ud83d\\ude01":1}'], bad=['{"\\ud83d\\ude00":1}', '{"\\ud83d":1}'])


def test_dependencies():
    s = {"type": "object", "properties": {"a": {}, "b": {}, "c": {}}, "dependentRequired": {"b": ["a"]}}
    check(s, [{}, {"a": 1}, {"a": 1, "b": 2}, {"c": 1}], [{"b": 1}, {"b": 1, "c": 2}])
    s = {"type": "object", "properties": {"a": {}, "b": {}},
         "dependentSchemas": {"a": {"properties": {"b": {"type": "integer"}}, "required": ["b"]}}}
    check(s, [{}, {"b": "x"}, {"a": 1, "b": 2}], [{"a": 1}, {"a": 1, "b": "x"}])
    check({"dependencies": {"b": ["a"]}, "properties": {"a": {}, "b": {}}}, [{"a": 1, "b": 2}, 5], [{"b": 1}],
          oracle=False)


def test_contains():
    check({"type": "array", "contains": {"type": "integer", "minimum": 5}}, [[5], [1, "a", 7], [9, 9]],
          [[], [1, 2], ["x"]])
    check({"type": "array", "items": {"type": "integer"}, "contains": {"const": 1}, "minContains": 2},
          [[1, 1], [1, 2, 1, 3]], [[1], [1, 2], [1, "x", 1]])
    check({"type": "array", "contains": {"const": 1}, "minContains": 0}, [[], [2]], [])
    with pytest.raises(SchemaError) as ei:
        schema_to_grammar({"type": "array", "contains": {"const": 1}, "maxContains": 1})
    assert ei.value.keyword == "maxContains"


def _lenient(schema):
    """(compiled grammar, the one SchemaWarning's text) for schema_to_grammar(lenient=True)"""
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        g = schema_to_grammar(schema, lenient=True)
    mine = [str(w.message) for w in rec if issubclass(w.category, SchemaWarning)]
    assert len(mine) == 1
    return compile_bytes(g), mine[0]


def test_lenient_contains_ignores_only_what_it_reports():
    # maxContains cannot be enforced: it alone is ignored, contains {const: 1} still holds
    cg, msg = _lenient({"type": "array", "contains": {"const": 1}, "maxContains": 2})
    assert "1 JSON Schema keyword" in msg and "'maxContains' at #" in msg
    assert accepts(cg, "[1]") and accepts(cg, "[2,1,1,1]") and not accepts(cg, "[2]") and not accepts(cg, "[]")
    cg, msg = _lenient({"type": "array", "contains": {"const": 1}, "minContains": 2, "maxContains": 3})
    assert "'maxContains' at #" in msg
    assert accepts(cg, "[1,2,1]") and not accepts(cg, "[1]")
    # two contains on one array: the second one is ignored (and named), the first one holds
    cg, msg = _lenient({"type": "array", "allOf": [{"contains": {"multipleOf": 2}}, {"contains": {"multipleOf": 3}}]})
    assert "1 JSON Schema keyword" in msg and "'contains' at #/allOf/1" in msg
    assert accepts(cg, "[2]") and accepts(cg, "[3,4]") and not accepts(cg, "[3]")
    # with prefixItems: the contains is ignored, and named
    cg, msg = _lenient({"type": "array", "prefixItems": [{"type": "integer"}], "contains": {"const": 1}})
    assert "'contains' at #" in msg and accepts(cg, "[2]")


def test_oneof_presence_only():
    s = {"type": "object", "properties": {k: {"type": "number"} for k in ("r", "l", "w")},
         "oneOf": [{"required": ["r"]}, {"required": ["l", "w"]}]}
    check(s, [{"r": 1}, {"l": 1, "w": 2}, {"r": 1, "l": 2}], [{}, {"r": 1, "l": 1, "w": 2}, {"l": 1}])


def test_pattern_properties():
    s = {"type": "object", "properties": {"id": {"type": "integer"}},
         "patternProperties": {"^x-[a-z]+$": {"type": "string"}}, "additionalProperties": False}
    check(s, [{}, {"id": 1, "x-ab": "v"}, {"x-a": "1", "x-b": "2"}], [{"x-a": 1}, {"y": "1"}, {"x-": "s"}])
    check({"patternProperties": {"^a": {}}, "type": "object"}, [{"a": 1, "b": 2}], [])  # no effect
    with pytest.raises(SchemaError) as ei:
        schema_to_grammar({"type": "object", "patternProperties": {"^a": {"type": "integer"}}})
    assert ei.value.keyword == "patternProperties"


def test_strict_and_additional_default():
    s = {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "string"}}}
    check(s, [{"a": 1, "b": "x"}], [{"a": 1}, {"a": 1, "b": "x", "c": 1}], strict=True, oracle=False)
    check(s, [{"a": 1}, {}], [{"a": 1, "c": 1}], additional_properties_default=False, oracle=False)
    # the default applies to the merged object: allOf parts do not forbid each other's properties
    s2 = {"allOf": [{"properties": {"a": {"type": "integer"}}}, {"properties": {"b": {"type": "integer"}}}]}
    texts(s2, ok=['{"a":1,"b":2}'], bad=['{"a":1,"c":2}'], additional_properties_default=False)


def test_any_order():
    s = dict(_PERSON, additionalProperties=False)
    check(s, [{"age": 3, "name": "a"}, {"tags": [], "name": "a", "age": 1}, {"name": "a"}],
          [{"age": 3}, {"name": "a", "x": 1}], any_order=True)
    texts(s, bad=['{"name":"a","name":"b"}', '{"age":1,"name":"a","age":2}'], any_order=True)
    s2 = dict(_PERSON)  # with additional members interleaved
    check(s2, [{"x": 1, "age": 3, "y": 2, "name": "a"}], [{"x": 1, "age": 3}], any_order=True)
    big = {"type": "object", "properties": {f"p{i}": {"type": "integer"} for i in range(6)},
           "required": ["p5", "p0"]}
    check(big, [{"p5": 1, "p3": 2, "p0": 3}, {f"p{i}": i for i in reversed(range(6))}, {"p0": 1, "p5": 2, "q": 3}],
          [{"p5": 1}, {"p0": 1, "p1": 2}], any_order=True)
    texts(big, bad=['{"p5":1,"p0":2,"p5":3}'], any_order=True)
    check({"const": {"a": 1, "b": [2]}}, [{"b": [2], "a": 1}], [{"a": 1}], any_order=True)


def test_any_order_limit():
    n = ANY_ORDER_MAX_PROPERTIES + 1
    s = {"type": "object", "properties": {f"p{i}": {"type": "integer"} for i in range(n)}}
    with pytest.raises(LimitError, match="any_order"):
        schema_to_grammar(s, any_order=True)
    schema_to_grammar(s)  # fine in schema order


# --------------------------------------------------------------------------------------- composition


def test_anyof_allof():
    check({"anyOf": [{"type": "string", "maxLength": 2}, {"type": "integer", "minimum": 10}]},
          ["ab", 10, 99], ["abc", 9, None])
    check({"type": "integer", "anyOf": [{"minimum": 10}, {"maximum": 0}]}, [10, -1, 0], [5, "x"])
    check({"allOf": [{"type": "integer"}, {"minimum": 2}, {"maximum": 4}]}, [2, 3, 4], [1, 5, 3.5])
    check({"allOf": [{"properties": {"a": {"type": "integer"}}, "required": ["a"]},
                     {"properties": {"b": {"type": "string"}}, "required": ["b"]}]},
          [{"a": 1, "b": "x"}], [{"a": 1}, {"b": "x"}, {"a": "1", "b": "x"}])
    check({"allOf": [{"properties": {"a": {"type": "integer"}}, "additionalProperties": False},
                     {"properties": {"b": {"type": "integer"}}}]},
          [{"a": 1}, {}], [{"b": 1}, {"a": 1, "b": 2}])
    check({"allOf": [{"type": "string"}, {"type": "integer"}]}, [], ["x", 1])
    check({"type": "object", "properties": {"a": {"type": "integer"}},
           "anyOf": [{"required": ["a"]}, {"required": ["b"]}]}, [{"a": 1}, {"b": 2}, {"a": 1, "b": 2}],
          [{}, {"a": "x"}, {"c": 1}])


def test_oneof_disjoint():
    check({"oneOf": [{"type": "string"}, {"type": "integer"}]}, ["a", 1], [None, 1.5])
    pet = {"oneOf": [
        {"type": "object", "properties": {"kind": {"const": "cat"}, "lives": {"type": "integer"}},
         "required": ["kind"]},
        {"type": "object", "properties": {"kind": {"const": "dog"}, "bark": {"type": "boolean"}},
         "required": ["kind"]}]}
    check(pet, [{"kind": "cat", "lives": 9}, {"kind": "dog", "bark": True}], [{"kind": "cow"}, {"lives": 1}])
    check({"oneOf": [{"enum": [1, 2, 3]}, {"enum": [3, 4]}]}, [1, 2, 4], [3, 5])
    check({"oneOf": [{"type": "integer", "maximum": 0}, {"type": "integer", "minimum": 1}]}, [0, 1], [])
    check({"oneOf": [{"type": "string"}, False]}, ["x"], [1])


def test_oneof_not_disjoint():
    s = {"oneOf": [{"type": "integer"}, {"minimum": 2}]}
    with pytest.raises(SchemaError) as ei:
        schema_to_grammar({"properties": {"x": s}})
    assert ei.value.keyword == "oneOf" and ei.value.pointer == "#/properties/x/oneOf"
    assert "coerce_one_of" in str(ei.value)
    check(s, [1, 2.5, 3], [1.5], coerce_one_of=True, oracle=False)  # anyOf semantics


def test_not_and_if_on_types():
    check({"not": {"type": "integer"}}, ["x", 1.5, None, []], [1, 0])
    check({"not": {"type": ["string", "null"]}}, [1, {}], ["x", None])
    check({"if": {"type": "string"}, "then": {"maxLength": 2}, "else": {"type": "integer"}}, ["ab", 3],
          ["abc", 1.5, None])
    check({"if": True, "then": {"type": "integer"}, "else": {"type": "string"}}, [1], ["x"])
    check({"if": False, "then": {"type": "integer"}, "else": {"type": "string"}}, ["x"], [1])
    check({"then": {"type": "integer"}}, ["x", 1], [])  # then without if: ignored, per the spec


# ---------------------------------------------------------------------------------------- references


def test_refs_and_recursion():
    tree = {"$defs": {"node": {"type": "object", "properties": {
        "value": {"type": "integer"}, "children": {"type": "array", "items": {"$ref": "#/$defs/node"}}},
        "required": ["value"], "additionalProperties": False}}, "$ref": "#/$defs/node"}
    check(tree, [{"value": 1}, {"value": 1, "children": [{"value": 2, "children": [{"value": 3}]}]}],
          [{"value": 1, "children": [{}]}, {"children": []}, {"value": 1, "children": [{"value": "x"}]}])
    g = schema_to_grammar(tree)
    assert "#/$defs/node" in g.names
    check({"definitions": {"a": {"type": "integer"}}, "properties": {"x": {"$ref": "#/definitions/a"}}},
          [{"x": 1}], [{"x": "1"}])
    check({"type": "object", "properties": {"next": {"$ref": "#"}, "v": {"type": "integer"}},
           "additionalProperties": False}, [{}, {"next": {"next": {"v": 2}}, "v": 1}], [{"next": {"v": "x"}}])
    # $ref with sibling keywords (2020-12: both apply)
    check({"$defs": {"s": {"type": "string"}}, "$ref": "#/$defs/s", "maxLength": 2}, ["ab"], ["abc", 1])
    # $anchor and $id-relative references
    check({"$id": "https://example.com/root.json", "$defs": {"a": {"$anchor": "num", "type": "integer"}},
           "properties": {"x": {"$ref": "#num"}, "y": {"$ref": "root.json#/$defs/a"}}},
          [{"x": 1, "y": 2}], [{"x": "1"}, {"y": "2"}])
    check({"$defs": {"a~b": {"type": "integer"}, "c/d": {"type": "string"}},
           "properties": {"x": {"$ref": "#/$defs/a~0b"}, "y": {"$ref": "#/$defs/c~1d"}}},
          [{"x": 1, "y": "s"}], [{"x": "s"}, {"y": 1}])


def test_ref_errors():
    with pytest.raises(SchemaError) as ei:
        schema_to_grammar({"$ref": "#"})
    assert ei.value.keyword == "$ref"
    with pytest.raises(SchemaError):
        schema_to_grammar({"allOf": [{"$ref": "#"}]})
    with pytest.raises(SchemaError) as ei:
        schema_to_grammar({"anyOf": [{"$ref": "#"}, {"type": "string"}]})
    assert "without consuming" in str(ei.value)
    with pytest.raises(SchemaError) as ei:
        schema_to_grammar({"properties": {"x": {"$ref": "https://example.com/other.json"}}})
    assert ei.value.keyword == "$ref" and "remote" in str(ei.value) and ei.value.pointer == "#/properties/x"
    with pytest.raises(SchemaError):
        schema_to_grammar({"$ref": "#/$defs/missing"})


# ------------------------------------------------------------------------------------ error handling


@pytest.mark.parametrize("kw,extra", [
    ("not", {"not": {"type": "object", "required": ["a"]}}),
    ("contains", {"type": "array", "contains": {"type": "integer"}, "minItems": 3}),
    ("maxContains", {"type": "array", "contains": {"type": "integer"}, "maxContains": 2}),
    ("patternProperties", {"type": "object", "patternProperties": {"^x": {"type": "integer"}}}),
    ("unevaluatedProperties", {"type": "object", "allOf": [{"properties": {"a": {}}}],
                               "unevaluatedProperties": False}),
    ("unevaluatedItems", {"type": "array", "anyOf": [{"prefixItems": [{}]}], "unevaluatedItems": False}),
    ("if", {"if": {"minimum": 3}, "then": {"maximum": 5}}),
    ("$dynamicRef", {"$dynamicRef": "#meta"}),
    ("uniqueItems", {"type": "array", "uniqueItems": True}),
    ("minProperties", {"type": "object", "properties": {"a": {}, "b": {}}, "minProperties": 1}),
])
def test_unsupported_keywords_raise(kw, extra):
    s = {"type": "object", "properties": {"inner": extra}}
    with pytest.raises(SchemaError) as ei:
        schema_to_grammar(s)
    assert ei.value.keyword == kw and ei.value.pointer == "#/properties/inner"
    assert "lenient=True" in str(ei.value)
    with pytest.warns(SchemaWarning, match=re.escape(f"'{kw}' at #/properties/inner")):
        schema_to_grammar(s, lenient=True)


def test_lenient_single_warning_lists_everything():
    s = {"type": "object", "properties": {
        "tags": {"type": "array", "items": {"type": "string"}, "uniqueItems": True},
        "x": {"not": {"const": 1}}, "y": {"type": "string", "format": "color"}}}
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        g = schema_to_grammar(s, lenient=True)
    mine = [w for w in rec if issubclass(w.category, SchemaWarning)]
    assert len(mine) == 1
    msg = str(mine[0].message)
    for part in ("'uniqueItems' at #/properties/tags", "'not' at #/properties/x", "'format' at #/properties/y"):
        assert part in msg
    cg = compile_bytes(g)
    assert accepts(cg, '{"tags":["a","a"],"x":1,"y":"red"}')


def test_unknown_keywords_are_annotations():
    check({"type": "integer", "x-vendor": {"not": {}}, "optional": True, "example": 3}, [1], ["1"])


def test_bad_schemas():
    for bad in ({"type": "strnig"}, {"type": 3}, {"required": "a"}, {"enum": 1}, {"minLength": -1},
                {"properties": []}, {"anyOf": []}, [1]):
        with pytest.raises(SchemaError):
            schema_to_grammar(bad)
    with pytest.raises(SchemaError):
        schema_to_grammar("{not json")


# ------------------------------------------------------------------------------------------ compat


def test_bfcl_compat():
    s = {"type": "dict", "properties": {"a": {"type": "float"}, "b": {"type": "tuple", "items": {"type": "int"}},
                                        "c": {"type": "any"}, "d": {"type": "list"}, "e": {"type": "str"},
                                        "f": {"type": "bool"}, "g": {"type": "HashMap"}},
         "required": ["a"]}
    cg = _compiled(s, compat="bfcl")
    assert accepts(cg, '{"a":1.5,"b":[1,2],"c":{"x":[null]},"d":["x",1],"e":"s","f":true,"g":{}}')
    assert accepts(cg, '{"a":2,"c":"anything"}')
    assert not accepts(cg, '{"a":"x"}') and not accepts(cg, '{"a":1,"b":[1.5]}')
    with pytest.raises(SchemaError) as ei:
        schema_to_grammar(s)
    assert ei.value.keyword == "type" and ei.value.pointer == "#" and 'compat="bfcl"' in str(ei.value)
    with pytest.raises(SchemaError) as ei:
        schema_to_grammar({"type": "object", "properties": {"a": {"type": "float"}}})
    assert ei.value.pointer == "#/properties/a"


# ---------------------------------------------------------------------------------------- whitespace


def test_separators_json_dumps_default():
    s = dict(_PERSON, additionalProperties=False)
    cg = _compiled(s, separators=(", ", ": "))
    for v in ({"name": "a", "age": 3, "tags": ["x", "y"]}, {"name": "é"}, {"name": "a", "tags": []}):
        assert accepts(cg, json.dumps(v)) and accepts(cg, json.dumps(v, ensure_ascii=False))
        assert not accepts(cg, json.dumps(v, separators=(",", ":"))) or len(v) == 1 and "tags" not in v
    any_cg = _compiled(True, separators=(", ", ": "))
    assert accepts(any_cg, json.dumps({"a": [1, {"b": None}], "c": {}}))
    with pytest.raises(ValueError):
        schema_to_grammar(True, separators=(";", ":"))


def test_flexible_whitespace():
    s = dict(_PERSON, additionalProperties=False)
    v = {"name": "a", "age": 3, "tags": ["x", "y"]}
    texts(s, ok=[json.dumps(v), json.dumps(v, separators=(",", ":")), json.dumps(v, indent=1),
                 '{ "name" : "a" ,\t"tags":[ ] }', '{"name":"a"\r\n}'],
          bad=[' {"name":"a"}', '{"name":"a"} ', '{' + " " * 5 + '"name":"a"}', json.dumps(v, indent=4)],
          whitespace="flexible", max_whitespace=4)
    texts(s, ok=[json.dumps(v, indent=4)], whitespace="flexible", max_whitespace=9)
    texts(True, ok=["[ ]", "{ }", '[1 , 2]'], bad=["[1 2]"], whitespace="flexible")
    texts(s, ok=['{"name":"a"}'], bad=['{ "name":"a"}'], whitespace="flexible", max_whitespace=0)


# -------------------------------------------------------------------------------------------- limits


def test_limits():
    with pytest.raises(LimitError):
        schema_to_grammar({"type": "string", "maxLength": 20_000})
    with pytest.raises(LimitError):
        schema_to_grammar({"type": "array", "minItems": 10_001})
    with pytest.raises(LimitError):
        schema_to_grammar({"type": "string", "pattern": "^a{50000}$"})
    schema_to_grammar({"type": "string", "maxLength": 20_000}, max_repetition=50_000)



def test_deep_nesting_stays_linear():
    # items are used twice ("x (, x)*") and optional members appear in several alternatives: without
    # shared (called) rules the automaton would double at every level
    deep, inst = {"type": "integer"}, 7
    for _ in range(40):
        deep, inst = {"type": "array", "items": deep}, [inst]
    check(deep, [inst, []], [[[1]], [["x"]]])
    obj, val = {"type": "integer"}, 1
    for i in range(25):
        obj = {"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "integer"}, "c": obj},
               "additionalProperties": False}
        val = {"b": i, "c": val}
    t = time.perf_counter()
    check(obj, [val, {}, {"c": {}}], [{"c": {"c": {"d": 1}}}])
    assert time.perf_counter() - t < 5


# -------------------------------------------------------------------------------------- BFCL, perf


def _bfcl_functions():
    data_path("function-calling/bfcl/v3/BFCL_v3_simple.json")
    base = DATA_DIR / "function-calling" / "bfcl" / "v3"
    out = []
    for f in sorted(base.glob("BFCL_v3_*.json")):
        for line in f.read_text().splitlines():
            fs = json.loads(line).get("function", [])
            out.extend([fs] if isinstance(fs, dict) else fs)
    return out


def test_bfcl_schemas_all_compile():
    for fn in _bfcl_functions():
        schema_to_grammar(fn.get("parameters") or {}, compat="bfcl", separators=(", ", ": "))


def test_bfcl_conversion_speed():
    fns = _bfcl_functions()
    uniq = list({json.dumps(f["parameters"], sort_keys=True): f["parameters"] for f in fns if f.get("parameters")}.values())
    tools = uniq[:128]
    for p in tools:  # warm module-level caches
        schema_to_grammar(p, compat="bfcl", separators=(", ", ": "))
    best = float("inf")
    for _ in range(3):
        t = time.perf_counter()
        for p in tools:
            schema_to_grammar(p, compat="bfcl", separators=(", ", ": "))
        best = min(best, time.perf_counter() - t)
    # target: ~10 ms for 128 tools; the bound leaves room for slow CI machines
    assert best < 0.05, f"128 BFCL tool schemas took {best * 1e3:.1f} ms"


# ------------------------------------------------------------------------------------------- into

@pytest.mark.parametrize("syntax", ["json", "python"])
def test_schemas_compiled_into_one_grammar(syntax):
    # Tool-call formats compile every tool's schema into the turn's grammar (schema_to_grammar(into=,
    # shared=)): each keeps its own language, and they share one "any JSON value" rule.
    from fcgrammar.grammar import REF, SEQ, Grammar, lit

    a = {"type": "object", "properties": {"x": {"type": "integer"}}, "required": ["x"]}  # open: any values
    b = {"type": "object", "properties": {"y": {"type": "string"}, "z": {}}, "required": ["y"]}
    g = Grammar()
    root = g.add_rule("root", None)
    shared = {}
    refs = []
    for s in (a, b):
        refs.append((REF, len(g.rules)))
        schema_to_grammar(s, into=g, shared=shared, syntax=syntax)
    assert g.names.count("any_value") == 1
    g.set_rule(root, (SEQ, (refs[0], lit(b"|"), refs[1])))
    cg = compile_bytes(g)
    if syntax == "json":
        ok = ['{"x":1}|{"y":"a"}', '{"x":1,"k":[{"q":null}]}|{"y":"a","z":{"w":[1]},"v":true}']
        bad = ['{"x":"1"}|{"y":"a"}', '{"x":1}|{"y":1}', '{"x":1,"x":2}|{"y":"a"}']
    else:
        ok = ["{'x': 1}|{'y': 'a'}", "{'x': 1, 'k': [{'q': None}]}|{'y': 'a', 'z': {'w': [1]}, 'v': True}"]
        bad = ["{'x': '1'}|{'y': 'a'}", "{'x': 1}|{'y': 1}", '{"x": 1}|{"y": "a", "z": true}']
    for t in ok:
        assert accepts(cg, t), t
    for t in bad:
        assert not accepts(cg, t), t
    # the same languages as each schema compiled on its own
    for s, t_ok in ((a, ok[1].split("|")[0]), (b, ok[1].split("|")[1])):
        assert accepts(_compiled(s, syntax=syntax), t_ok)


def test_const_string_leaves():
    # {"const": "..."} members (a call object's name) take the compiler's fast path for leaves: the same
    # language as the general one, any spelling of the value accepted.
    s = {"type": "object", "properties": {"name": {"const": "get_wé", "description": "d"},
                                          "kind": {"type": "string", "const": "a\"b"},
                                          "n": {"type": "integer", "const": "x"}},
         "required": ["name"], "additionalProperties": False}
    check(s, [{"name": "get_wé"}, {"name": "get_wé", "kind": 'a"b'}],
          [{"name": "get_w"}, {"name": "get_wéx"}, {"name": "get_wé", "kind": "ab"}, {"name": "get_wé", "n": "x"}])
    texts(s, ok=['{"name":"get_w\\u00e9"}', '{"name":"\\u0067et_w\\u00E9","kind":"a\\u0022b"}'],
          bad=['{"name":"get_w\\u00e9","n":"x"}'])
    check({"type": "object", "properties": {"v": {"const": "s", "type": "str"}}}, [{"v": "s"}], [{"v": "t"}],
          compat="bfcl", oracle=False)
