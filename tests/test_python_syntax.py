"""schema_to_grammar(..., syntax="python") and kwargs=True: Python literal spellings of valid instances.

Completeness: valid instances (confirmed with jsonschema) are accepted in several Python spellings (repr,
both quote styles, escaped the ways Python allows). Soundness: random walks over the grammar (byte level,
and once end to end with the demo vocabulary) produce texts whose ``ast.literal_eval`` is a valid instance;
plus hand-written negatives (JSON words, unquoted/triple-quoted/prefixed strings, Python-only numbers,
trailing commas, missing/unknown keyword arguments).
"""
from __future__ import annotations

import ast
import json
import random
import zlib
from decimal import Decimal

import jsonschema
import pytest

import fcgrammar as fcg
from fcgrammar._testing import accepts, compile_bytes
from fcgrammar.errors import SchemaError
from fcgrammar.json_schema import schema_to_grammar

from walks import byte_vocabulary, random_walk

_FORMATS = jsonschema.Draft202012Validator.FORMAT_CHECKER


def _valid(schema, v) -> bool:
    return jsonschema.Draft202012Validator(schema, format_checker=_FORMATS).is_valid(v)


# ------------------------------------------------------------------------------------------ rendering
_SIMPLE = {"\n": "\\n", "\t": "\\t", "\r": "\\r", "\b": "\\b", "\f": "\\f"}


def py_str(s: str, quote: str = "'", esc: str = "min") -> str:
    """A Python string literal for s. esc: "min" (raw where possible), "ascii" (non-ASCII escaped),
    "all" (every character escaped, \\x/\\u/\\U, upper-case hex), "quotes" (both quote kinds escaped)."""
    out = []
    for i, ch in enumerate(s):
        c = ord(ch)
        if ch == quote or ch == "\\" or (esc == "quotes" and ch in "'\""):
            out.append("\\" + ch)
        elif esc == "all":
            if c <= 0xFF and i % 2 == 0:
                out.append(f"\\x{c:02X}")
            elif c <= 0xFFFF:
                out.append(f"\\u{c:04X}" if i % 3 else f"\\u{c:04x}")
            else:
                out.append(f"\\U{c:08X}")
        elif ch in _SIMPLE:
            out.append(_SIMPLE[ch])
        elif c < 0x20:
            out.append(f"\\x{c:02x}")
        elif esc == "ascii" and c >= 0x7F:
            out.append(f"\\x{c:02x}" if c <= 0xFF else f"\\u{c:04x}" if c <= 0xFFFF else f"\\U{c:08x}")
        else:
            out.append(ch)
    return quote + "".join(out) + quote


def render(v, quote="'", esc="min", seps=(", ", ": ")) -> str:
    if v is None:
        return "None"
    if v is True:
        return "True"
    if v is False:
        return "False"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return py_str(v, quote, esc)
    if isinstance(v, list):
        return "[" + seps[0].join(render(x, quote, esc, seps) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + seps[0].join(py_str(k, quote, esc) + seps[1] + render(x, quote, esc, seps)
                                  for k, x in v.items()) + "}"
    raise TypeError(v)


def spellings(v):
    out = {repr(v)}
    for q in "'\"":
        for esc in ("min", "ascii", "all", "quotes"):
            out.add(render(v, q, esc))
    return sorted(out)


def render_kwargs(d: dict, quote="'", esc="min", sep=", ", eq="=") -> str:
    return sep.join(f"{k}{eq}{render(x, quote, esc)}" for k, x in d.items())


def _exact(node, src: str):
    """ast.literal_eval, except that numbers with a fraction or exponent are read from their decimal text
    (an int when integral): the grammar decides bounds and multipleOf on the text, as the JSON path does
    (docs/json-schema.md, departure 6), while Python would round 10**30 + 0.0 to a double."""
    if isinstance(node, ast.Constant) and isinstance(node.value, float):
        try:
            d = Decimal(ast.get_source_segment(src, node))
            if d.adjusted() < 4000 and d == d.to_integral_value():
                return int(d)
        except ArithmeticError:  # exponents beyond the decimal context
            pass
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        v = _exact(node.operand, src)
        assert isinstance(v, (int, float)) and not isinstance(v, bool)
        return -v
    if isinstance(node, ast.List):
        return [_exact(x, src) for x in node.elts]
    if isinstance(node, ast.Dict):
        return {_exact(k, src): _exact(v, src) for k, v in zip(node.keys, node.values)}
    return ast.literal_eval(node)


def py_eval(text: str):
    ast.literal_eval(text)  # a Python literal
    return _exact(ast.parse(text, mode="eval").body, text)


def parse_kwargs(text: str) -> dict:
    call = ast.parse(f"f({text})", mode="eval").body
    assert isinstance(call, ast.Call) and not call.args
    out = {}
    for kw in call.keywords:
        assert kw.arg is not None and kw.arg not in out, text
        ast.literal_eval(kw.value)
        out[kw.arg] = _exact(kw.value, f"f({text})")
    return out


# ------------------------------------------------------------------------------------------ schemas
ANY_STR = {"type": "string"}
WEATHER = {
    "type": "object",
    "properties": {
        "city": {"type": "string", "minLength": 1},
        "metric": {"enum": ["celsius", "fahrenheit"]},
        "days": {"type": "integer", "minimum": 1, "maximum": 14},
        "flags": {"type": "array", "items": {"type": ["boolean", "null"]}},
        "opts": {"type": "object", "properties": {"a": {"type": "number"}}, "additionalProperties": False},
    },
    "required": ["city"],
    "additionalProperties": False,
}
TREE = {
    "$defs": {"node": {"type": "object", "properties": {"v": {"type": "integer"},
                                                         "kids": {"type": "array", "items": {"$ref": "#/$defs/node"}}},
                       "required": ["v"], "additionalProperties": False}},
    "$ref": "#/$defs/node",
}
CASES = [
    ("string", ANY_STR, ["", "a", "it's", 'say "hi"', "both ' and \"", "back\\slash", "tab\tnl\ncr\r\b\f",
                         "\x00\x01\x1f\x7f", "é ü ß", "日本語", "😀 astral \U0001f600", "\u2028\u00a0\ufeff"],
     [1, None, True, ["a"]]),
    ("minmax", {"type": "string", "minLength": 2, "maxLength": 3}, ["ab", "a\nb", "😀😀", "xyz", "'\"\\"],
     ["a", "abcd", "😀"]),
    ("pattern", {"type": "string", "pattern": "^[a-c]+[0-9]?$"}, ["abc", "a1", "cccc9"], ["abd", "a12", ""]),
    ("pattern_quote", {"type": "string", "pattern": "^[^\"']*'$"}, ["it'", "'"], ["it", "a\"'", "''"]),
    ("format_date", {"type": "string", "format": "date"}, ["2024-02-29", "1999-12-31"], ["2023-02-29", "x"]),
    ("format_email", {"type": "string", "format": "email"}, ["a@b.co", "x.y@example.org"], ["ab", "a.b"]),
    ("string_enum", {"enum": ["a'b", 'c"d', "é", "x\ny", "\\"]}, ["a'b", 'c"d', "é", "x\ny", "\\"],
     ["a", "ab", "e"]),
    ("string_const", {"const": "Don't"}, ["Don't"], ["Dont", "don't"]),
    ("number", {"type": "number"}, [0, -0.0, 1.5, -2, 1e-05, 1e+16, 123456789012345678901234567890, 3.25e100],
     ["1", None]),
    ("number_bounds", {"type": "number", "exclusiveMinimum": 0, "maximum": 2.5}, [0.001, 1, 2.5, 2.25],
     [0, -1, 2.51, 3]),
    ("integer", {"type": "integer", "minimum": -5, "maximum": 120}, [-5, 0, 7, 120, 3.0], [-6, 121, 1.5]),
    ("multiple", {"type": "integer", "multipleOf": 5}, [0, 5, -15, 1000], [1, 7]),
    ("boolean", {"type": "boolean"}, [True, False], [0, 1, None, "True"]),
    ("null", {"type": "null"}, [None], [False, 0, ""]),
    ("number_enum", {"enum": [1, 2.5, None, True, "x"]}, [1, 2.5, None, True, "x", 1.0], [False, 2, "y"]),
    ("array", {"type": "array", "items": {"type": "integer"}, "minItems": 1, "maxItems": 3},
     [[1], [1, 2, 3]], [[], [1, 2, 3, 4], ["a"]]),
    ("tuple", {"type": "array", "prefixItems": [{"type": "string"}, {"type": "boolean"}], "items": False},
     [["a", True], ["b"], []], [[True, "a"], ["a", True, 1]]),
    ("nested", {"type": "array", "items": {"type": "array", "items": {"type": ["string", "null"]}}},
     [[], [[]], [["a", None], ["b"]], [[None]]], [[1], ["a"], [[1]]]),
    ("object", WEATHER, [{"city": "SF"}, {"city": "San Francisco", "metric": "celsius"},
                         {"city": "x", "days": 3, "flags": [True, None], "opts": {"a": 1.5}},
                         {"city": "O'Hare", "metric": "fahrenheit", "days": 14, "flags": [], "opts": {}}],
     [{}, {"city": ""}, {"city": "x", "days": 0}, {"city": "x", "zzz": 1}, {"city": "x", "opts": {"b": 1}},
      {"metric": "celsius"}]),
    ("additional", {"type": "object", "properties": {"a": {"type": "integer"}},
                    "additionalProperties": {"type": "string"}},
     [{}, {"a": 1}, {"a": 1, "b": "x", "c": "y"}, {"b": "x"}, {"a'": "q"}, {"": ""}],
     [{"a": "x"}, {"b": 1}]),
    ("anyof", {"anyOf": [{"type": "string", "maxLength": 2}, {"type": "integer", "minimum": 10},
                         {"type": "object", "properties": {"k": {"const": True}}, "required": ["k"]}]},
     ["", "ab", 10, 99, {"k": True}, {"k": True, "z": None}], ["abc", 9, {"k": False}, {}]),
    ("ref_recursion", TREE, [{"v": 1}, {"v": 1, "kids": []}, {"v": 1, "kids": [{"v": 2, "kids": [{"v": 3}]}]}],
     [{"v": 1, "kids": [{}]}, {"kids": []}, {"v": "1"}]),
    ("any", {}, [None, True, 1, -2.5, "s", [], {}, [1, "a", None, {"k": [False]}], {"x'y": {"": [1.5, "\n"]}}],
     []),
]
CASE_IDS = [c[0] for c in CASES]
_CASE = {c[0]: c[1] for c in CASES}


@pytest.fixture(scope="module")
def compiled():
    cache = {}

    def get(name, schema, **opts):
        key = (name, tuple(sorted(opts.items())))
        if key not in cache:
            cache[key] = compile_bytes(schema_to_grammar(schema, syntax="python", **opts))
        return cache[key]

    return get


@pytest.mark.parametrize("name,schema,valid,invalid", CASES, ids=CASE_IDS)
def test_valid_instances_accepted_in_every_spelling(compiled, name, schema, valid, invalid):
    cg = compiled(name, schema)
    for v in valid:
        assert _valid(schema, v), f"test bug: jsonschema rejects {v!r}"
        for text in spellings(v):
            assert ast.literal_eval(text) == v or (v != v), f"test bug: {text}"
            assert accepts(cg, text), f"valid instance rejected: {text}"


@pytest.mark.parametrize("name,schema,valid,invalid", CASES, ids=CASE_IDS)
def test_invalid_instances_rejected(compiled, name, schema, valid, invalid):
    cg = compiled(name, schema)
    for v in invalid:
        assert not _valid(schema, v), f"test bug: jsonschema accepts {v!r}"
        for text in spellings(v):
            assert not accepts(cg, text), f"invalid instance accepted: {text}"


def test_flexible_whitespace_and_separators():
    v = {"city": "x", "days": 3, "flags": [True, None], "opts": {"a": 1.5}}
    assert accepts(schema_to_grammar(WEATHER, syntax="python"), render(v))  # repr style is the default
    assert not accepts(schema_to_grammar(WEATHER, syntax="python"), render(v, seps=(",", ":")))
    g = schema_to_grammar(WEATHER, syntax="python", separators=(",", ":"))
    assert accepts(g, render(v, seps=(",", ":")))
    assert not accepts(g, render(v))
    g = schema_to_grammar(WEATHER, syntax="python", whitespace="flexible", max_whitespace=8)
    pretty = json.dumps(v, indent=2).replace("true", "True").replace("null", "None")
    for text in (render(v), render(v, seps=(",", ":")), pretty, render(v, seps=(" ,\n  ", " :\t"))):
        assert accepts(g, text), text
    assert not accepts(g, " " + render(v))


def test_python_only_forms_rejected():
    g = compile_bytes(schema_to_grammar({"type": "array", "items": {"type": ["string", "number", "boolean", "null"]}},
                                        syntax="python"))
    good = ["[]", "['a']", '["a"]', "[1, -0, 1.5e3, 2E-2, True, False, None]", "['\\x41\\u00e9\\U0001F600']",
            "[\"it's\", 'say \"hi\"', '\\'', \"\\\"\", '\\\"', \"\\'\"]", "['\\n\\t\\r\\b\\f\\\\']"]
    bad = ["[true]", "[false]", "[null]", "[abc]", "['''a''']", '["""a"""]', "[r'a']", "[b'a']", "[f'a']",
           "[u'a']", "['a' 'b']", "['a''b']", "[0x10]", "[1_000]", "[+1]", "[.5]", "[5.]", "[01]", "[1j]",
           "[1, ]", "[1, 2,]", "[,]", "['\\d']", "['\\a']", "['\\v']", "['\\0']", "['\\101']", "['\\N{BULLET}']",
           "['a\nb']", "['a\rb']", "['a\\\nb']", "['\\ud800']", "['\\ud83d\\ude00']", "['\\x4']", "['\\u12']",
           "['\\U0011ffff']", "['it's']", '["say "hi""]', "['a\"]", "[\"a']", "['\x01']", "[inf]", "[nan]",
           "[1,2]", "(1, 2)", "[1 , 2]", "['a'\n]"]
    for t in good:
        assert ast.literal_eval(t) is not None
        assert accepts(g, t), t
    for t in bad:
        assert not accepts(g, t), t
    # dicts: keys quoted either way, no trailing comma, no bare names
    g = compile_bytes(schema_to_grammar({"type": "object"}, syntax="python"))
    for t in ["{}", "{'a': 1}", '{"a": 1}', "{'a': {'b': [None]}, \"c\": 'd'}"]:
        assert accepts(g, t), t
    for t in ["{a: 1}", "{'a': 1, }", "{'a':1}", "{1: 1}", "{None: 1}", "{'a' : 1}", "dict(a=1)", "{'a': null}"]:
        assert not accepts(g, t), t


def test_string_constraints_on_decoded_code_points():
    g = compile_bytes(schema_to_grammar({"type": "string", "maxLength": 1, "minLength": 1}, syntax="python"))
    for c in list(range(0, 0x300)) + [0x2028, 0xFFFF, 0xE000, 0x10000, 0x1F600, 0x10FFFF]:
        ch = chr(c)
        forms = [repr(ch), f"'\\x{c:02x}'" if c <= 0xFF else None, f"'\\u{c:04X}'" if c <= 0xFFFF else None,
                 f'"\\U{c:08x}"']
        for t in forms:
            if t is not None:
                assert ast.literal_eval(t) == ch
                assert accepts(g, t), t
    for t in ["''", "'ab'", "'\\x41\\x42'", "'\\ud800'", "'\\udfff'", "'\\ud83d\\ude00'"]:
        assert not accepts(g, t), t
    # pattern / enum / property names / additional-key exclusion see through escapes
    g = compile_bytes(schema_to_grammar({"type": "string", "pattern": "^a+$"}, syntax="python"))
    assert accepts(g, "'a\\x61\\u0061\\U00000061'") and not accepts(g, "'\\x62'")
    g = compile_bytes(schema_to_grammar({"type": "object", "properties": {"a": {"type": "integer"}},
                                         "additionalProperties": {"type": "string"}}, syntax="python"))
    assert accepts(g, "{'\\x61': 1}") and accepts(g, "{\"\\u0061\": 1}")
    assert not accepts(g, "{'\\x61': 'x'}")  # "a" is declared: its value must be an integer
    assert accepts(g, "{'\\x62': 'x'}")


def test_json_default_unchanged():
    for _name, schema, _v, _i in CASES:
        a = schema_to_grammar(schema)
        b = schema_to_grammar(schema, syntax="json")
        assert a.rules == b.rules and a.names == b.names
    g = schema_to_grammar(WEATHER)
    assert accepts(g, json.dumps({"city": "x", "flags": [True, None]}, separators=(",", ":")))
    assert not accepts(g, "{'city':'x'}")
    with pytest.raises(ValueError):
        schema_to_grammar(WEATHER, syntax="yaml")
    with pytest.raises(ValueError):
        schema_to_grammar(WEATHER, kwargs=True)


# ------------------------------------------------------------------------------------------ kwargs
def test_kwargs_accepts_and_rejects():
    g = compile_bytes(schema_to_grammar(WEATHER, syntax="python", kwargs=True))
    good = [{"city": "San Francisco"}, {"city": "San Francisco", "metric": "celsius"},
            {"city": "x", "days": 3, "flags": [True, None], "opts": {"a": 1.5}},
            {"city": "O'Hare", "metric": "fahrenheit", "days": 14, "flags": [], "opts": {}}]
    for v in good:
        assert _valid(WEATHER, v)
        for q in "'\"":
            for esc in ("min", "all", "quotes"):
                t = render_kwargs(v, q, esc)
                assert parse_kwargs(t) == v
                assert accepts(g, t), t
    assert accepts(g, "city='San Francisco', metric=\"celsius\"")
    bad = ["", "metric='celsius'", "city=''", "city='x', days=0", "city='x', zzz=1", "city='x', opts={'b': 1}",
           "city='x',", "city='x', ", ", city='x'", "city='x' metric='celsius'", "city='x',metric='celsius'",
           "city = 'x'", "city= 'x'", "city: 'x'", "'city'='x'", "\"city\"='x'", "{'city': 'x'}",
           "city='x', city='y'", "metric='celsius', city='x'", "city=x", "city=true", "city='x', flags=[true]",
           "city='x', metric=None", "city='''x'''", "city=r'x'", "city='x', days=0x10", "city='x', days=1_0",
           "(city='x')", "city='x', flags=[None, ]", "city='x', **{}", "'x'"]
    for t in bad:
        assert not accepts(g, t), t


def test_kwargs_additional_and_any_order():
    schema = {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "string"}},
              "required": ["a"]}
    g = compile_bytes(schema_to_grammar(schema, syntax="python", kwargs=True))
    for t in ["a=1", "a=1, b='x'", "a=1, extra=None", "a=1, b='x', c_2=[1], _d={'k': 'v'}", "a=1, ab=2, bb=3",
              "a=1, aa=1", "a=1, classy=1", "a=1, match=1", "a=1, B=2"]:
        assert accepts(g, t), t
        assert _valid(schema, parse_kwargs(t)), t
    for t in ["b='x', a=1", "a=1, a=2", "a=1, b=1", "a=1, class=1", "a=1, None=1", "a=1, 1x=1", "a=1, x-y=1",
              "a=1, b='x', b='y'", "a=1, extra=1, b='x'", "extra=1"]:
        assert not accepts(g, t), t
    g = compile_bytes(schema_to_grammar(schema, syntax="python", kwargs=True, any_order=True))
    for t in ["a=1", "b='x', a=1", "z=None, b='x', a=1, y=2"]:
        assert accepts(g, t), t
    for t in ["b='x'", "b='x', a=1, b='y'", "a=1, a=2"]:
        assert not accepts(g, t), t
    # no declared properties: any keyword arguments, including none at all
    g = compile_bytes(schema_to_grammar({"type": "object"}, syntax="python", kwargs=True))
    for t in ["", "x=1", "x=1, y={'a': [None]}"]:
        assert accepts(g, t), t
    g = compile_bytes(schema_to_grammar({"type": "object", "properties": {}, "additionalProperties": False},
                                        syntax="python", kwargs=True))
    assert accepts(g, "") and not accepts(g, "x=1")


def test_kwargs_separators_and_whitespace():
    schema = {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "array"}},
              "required": ["a", "b"]}
    g = schema_to_grammar(schema, syntax="python", kwargs=True)
    assert accepts(g, "a=1, b=[1, 2]") and not accepts(g, "a=1,b=[1,2]")
    g = schema_to_grammar(schema, syntax="python", kwargs=True, separators=(",", ":"))
    assert accepts(g, "a=1,b=[1,2]") and not accepts(g, "a=1, b=[1, 2]")
    g = schema_to_grammar(schema, syntax="python", kwargs=True, kwargs_separators=(" , ", " = "))
    assert accepts(g, "a = 1 , b = [1, 2]") and not accepts(g, "a=1, b=[1, 2]")
    g = schema_to_grammar(schema, syntax="python", kwargs=True, whitespace="flexible")
    for t in ["a=1, b=[1, 2]", "a=1,b=[1,2]", "a = 1 ,\n   b = [\n  1,\n  2\n]"]:
        assert accepts(g, t), t
    assert not accepts(g, " a=1, b=[]") and not accepts(g, "a=1, b=[] ")
    with pytest.raises(ValueError):
        schema_to_grammar(schema, syntax="python", kwargs=True, kwargs_separators=(", ", ":"))
    with pytest.raises(ValueError):
        schema_to_grammar(schema, syntax="python", kwargs_separators=(", ", "="))


def test_kwargs_schema_errors():
    bad = {"type": "object", "properties": {"ok": {"type": "integer"}, "not-ident": {"type": "string"}}}
    with pytest.raises(SchemaError) as e:
        schema_to_grammar(bad, syntax="python", kwargs=True)
    assert e.value.keyword == "properties" and e.value.pointer == "#"
    nested = {"type": "object", "properties": {"x": {"$ref": "#/$defs/o"}},
              "$defs": {"o": {"type": "object", "properties": {"class": {"type": "integer"}}}}}
    # only the root is written as keyword arguments: nested dicts may have any key
    g = schema_to_grammar(nested, syntax="python", kwargs=True)
    assert accepts(g, "x={'class': 1}")
    with pytest.raises(SchemaError) as e:
        schema_to_grammar(nested["$defs"]["o"], syntax="python", kwargs=True)
    assert e.value.keyword == "properties"
    with pytest.raises(SchemaError) as e:
        schema_to_grammar({"type": "object", "required": ["a b"]}, syntax="python", kwargs=True)
    assert e.value.keyword == "required"
    with pytest.raises(SchemaError) as e:
        schema_to_grammar({"type": "string"}, syntax="python", kwargs=True)
    assert e.value.keyword == "type"
    # a property that can never appear needs no name
    g = schema_to_grammar({"type": "object", "properties": {"a": {"type": "integer"}, "b-c": False},
                           "additionalProperties": False}, syntax="python", kwargs=True)
    assert accepts(g, "a=1") and accepts(g, "")


def test_kwargs_recursion_enum_and_anyof():
    schema = {"type": "object", "properties": {"name": {"type": "string"}, "child": {"$ref": "#"}},
              "required": ["name"], "additionalProperties": False}
    g = compile_bytes(schema_to_grammar(schema, syntax="python", kwargs=True))
    for t in ["name='a'", "name='a', child={'name': 'b'}", "name='a', child={'name': 'b', 'child': {'name': 'c'}}"]:
        assert accepts(g, t), t
        assert _valid(schema, parse_kwargs(t))
    for t in ["name='a', child=name='b'", "name='a', child={name='b'}", "name='a', child={'child': {}}"]:
        assert not accepts(g, t), t
    schema = {"enum": [{"a": 1, "b": "x"}, {"a": 2}, {"not ident": 1}, "string"]}
    g = compile_bytes(schema_to_grammar(schema, syntax="python", kwargs=True))
    assert accepts(g, "a=1, b='x'") and accepts(g, "a=2") and not accepts(g, "a=1")
    assert not accepts(g, "'string'")
    schema = {"type": "object", "anyOf": [{"properties": {"k": {"const": "x"}, "n": {"type": "integer"}},
                                           "required": ["k", "n"], "additionalProperties": False},
                                          {"properties": {"k": {"const": "y"}, "s": {"type": "string"}},
                                           "required": ["k", "s"], "additionalProperties": False}]}
    g = compile_bytes(schema_to_grammar(schema, syntax="python", kwargs=True))
    assert accepts(g, "k='x', n=1") and accepts(g, "k='y', s='q'")
    assert not accepts(g, "k='x', s='q'") and not accepts(g, "k='y', n=1")


# ------------------------------------------------------------------------------------------ random walks
@pytest.fixture(scope="module")
def byte_compiler():
    vocab = byte_vocabulary()
    return vocab, fcg.Compiler(vocab)


@pytest.mark.parametrize("name,schema,valid,invalid", CASES, ids=CASE_IDS)
def test_byte_random_walks_are_valid(byte_compiler, name, schema, valid, invalid):
    vocab, compiler = byte_compiler
    cg = compiler.compile_grammar(schema_to_grammar(schema, syntax="python"))
    rng = random.Random(zlib.crc32(name.encode()))
    mask = fcg.allocate_token_bitmask(1, vocab.size)
    budget = 90
    for _ in range(40):
        m = fcg.Matcher(cg, max_tokens=budget)
        ids = random_walk(m, rng, vocab.size, mask, budget)
        assert m.is_accepting()
        text = vocab.decode([i for i in ids if i != 256]).decode("utf-8")
        v = py_eval(text)
        assert _valid(schema, v), f"{name}: {text!r} -> {v!r} is not valid"


def test_byte_random_walks_kwargs(byte_compiler):
    vocab, compiler = byte_compiler
    schemas = [WEATHER, {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "string"}},
                         "required": ["a"]}]
    rng = random.Random(7)
    mask = fcg.allocate_token_bitmask(1, vocab.size)
    for i, schema in enumerate(schemas):
        for opts in ({}, {"any_order": True}, {"whitespace": "flexible"}):
            cg = compiler.compile_grammar(schema_to_grammar(schema, syntax="python", kwargs=True, **opts))
            for _ in range(30):
                m = fcg.Matcher(cg, max_tokens=120)
                ids = random_walk(m, rng, vocab.size, mask, 120)
                assert m.is_accepting()
                text = vocab.decode([t for t in ids if t != 256]).decode("utf-8")
                v = parse_kwargs(text)
                assert _valid(schema, v), f"schema {i} {opts}: {text!r} -> {v!r}"


def test_demo_vocabulary_end_to_end():
    from fcgrammar.demo_vocab import demo_vocabulary

    vocab = demo_vocabulary()
    compiler = fcg.Compiler(vocab)
    mask = fcg.allocate_token_bitmask(1, vocab.size)
    rng = random.Random(2024)
    budget = 80
    for kwargs in (True, False):
        for schema in (WEATHER, TREE, _CASE["string"], _CASE["multiple"], _CASE["any"]):
            if kwargs and schema is not WEATHER and schema is not TREE:
                continue
            cg = compiler.compile_grammar(schema_to_grammar(schema, syntax="python", kwargs=kwargs))
            for _ in range(25):
                m = fcg.Matcher(cg, max_tokens=budget)
                ids = random_walk(m, rng, vocab.size, mask, budget)
                assert m.is_accepting()
                stops = set(vocab.special_mask().nonzero()[0].tolist()) if hasattr(vocab, "special_mask") else set()
                text = vocab.decode([t for t in ids if t not in stops]).decode("utf-8")
                v = parse_kwargs(text) if kwargs else py_eval(text)
                assert _valid(schema, v), f"{text!r} -> {v!r}"
