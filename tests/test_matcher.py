"""Matcher API semantics on the embedded BPE vocabulary (always runs: no shared data needed).

The reference for every mask is the matcher itself stepping token by token: a token is in the mask iff
accepting it succeeds (checked exhaustively over the vocabulary along random walks).
"""
from __future__ import annotations

import random

import numpy as np
import pytest

import fcgrammar as fcg
from fcgrammar.demo_vocab import CALL, EOS, demo_vocabulary
from fcgrammar.grammar import ANY_CODEPOINT, Grammar, alt, cp, lit, opt, ref, rep, seq, star, tok


@pytest.fixture(scope="module")
def vocab():
    return demo_vocabulary()


@pytest.fixture(scope="module")
def compiler(vocab):
    return fcg.Compiler(vocab)


def json_string():
    return seq(lit('"'), rep(cp(ANY_CODEPOINT, json=True), 0, -1), lit('"'))


def weather_grammar() -> Grammar:
    g = Grammar()
    unit = alt(lit('"celsius"'), lit('"fahrenheit"'))
    g.add_rule("root", seq(lit('{"location":'), json_string(), opt(seq(lit(',"unit":'), unit)), lit("}")))
    return g


def nested_grammar() -> Grammar:
    """value ::= string | "1" | "[" (value ("," value)*)? "]"  (recursive: uses the stack)"""
    g = Grammar()
    v = g.add_rule("value")
    items = seq(ref(v), star(seq(lit(","), ref(v))))
    g.set_rule(v, alt(json_string(), lit("1"), seq(lit("["), opt(items), lit("]"))))
    return g


def allowed_ids(m, vocab):
    bm = fcg.allocate_token_bitmask(1, vocab.size)
    m.fill_next_token_bitmask(bm)
    bits = np.unpackbits(bm[0].view(np.uint8), bitorder="little")[: vocab.size]
    return set(int(i) for i in np.flatnonzero(bits))


def check_mask_exact(m, vocab):
    allowed = allowed_ids(m, vocab)
    for t in range(vocab.size):
        probe = m.copy()
        ok = probe.accept_token(t)
        assert ok == (t in allowed), (t, vocab.tokens[t] if t < len(vocab.tokens) else None, ok)
    return allowed


def shared_member_grammar() -> Grammar:
    """A called (non-recursive) rule used at two places with different continuations: masks inside it
    are cached per caller return state and must not leak from one call site to the other."""
    g = Grammar()
    root = g.add_rule("root")
    member = g.add_rule("member", seq(json_string(), lit(":"), alt(lit("1"), json_string())), call=True)
    g.set_rule(root, alt(seq(lit("["), ref(member), star(seq(lit(","), ref(member))), lit("]")),
                         seq(lit("{"), ref(member), lit("}"))))
    return g


@pytest.mark.parametrize("make", [weather_grammar, nested_grammar, shared_member_grammar])
def test_mask_is_exactly_what_accept_allows(compiler, vocab, make):
    grammar = compiler.compile_grammar(make())
    rng = random.Random(1)
    for walk in range(3):
        m = fcg.Matcher(grammar, max_tokens=40)
        while not m.is_terminated() and m.num_tokens < 40:
            allowed = check_mask_exact(m, vocab)
            assert allowed, "a live matcher must always allow some token"
            stop = set(vocab.stop_ids)
            assert bool(allowed & stop) == m.is_accepting()
            assert m.accept_token(rng.choice(sorted(allowed)))
        assert m.is_accepting()


def test_special_tokens_only_where_named(compiler, vocab):
    call = vocab.tokens.index(CALL)
    g = Grammar()
    g.add_rule("root", seq(lit("go"), tok(call)))
    grammar = compiler.compile_grammar(g)
    m = fcg.Matcher(grammar)
    assert call not in allowed_ids(m, vocab)
    assert m.accept_string("go")
    assert allowed_ids(m, vocab) == {call}
    assert m.accept_token(call)
    assert m.is_accepting()
    # the same special token is not allowed by a text grammar
    plain = compiler.compile_grammar(weather_grammar())
    m2 = fcg.Matcher(plain)
    m2.accept_string('{"location":"x')
    assert call not in allowed_ids(m2, vocab)
    assert not m2.accept_token(call)


def test_padding_ids_never_allowed():
    base = demo_vocabulary()
    padded = fcg.Vocabulary.from_tokens(list(base.tokens), special_ids=base.special_ids, stop_ids=base.stop_ids,
                                        vocab_size=len(base.tokens) + 37)
    grammar = fcg.Compiler(padded).compile_grammar(weather_grammar())
    m = fcg.Matcher(grammar)
    m.accept_string('{"location":"')
    allowed = allowed_ids(m, padded)
    assert not any(t >= len(base.tokens) for t in allowed)
    assert not m.accept_token(len(base.tokens) + 5)


def test_rollback_validate_reset_copy(compiler, vocab):
    grammar = compiler.compile_grammar(weather_grammar())
    ids = [vocab.tokens.index(bytes([b])) for b in b'{"location":"Paris"}']
    m = fcg.Matcher(grammar)
    assert m.validate_tokens(ids + ids) == len(ids)
    assert m.num_tokens == 0
    assert m.accept_tokens(ids)
    assert m.is_accepting()
    m.rollback(3)
    assert not m.is_accepting()
    c = m.copy()
    assert c.accept_tokens(ids[-3:]) and c.is_accepting()
    assert not m.is_accepting()
    assert not m.accept_tokens([ids[-3], vocab.stop_ids[0]])  # all or nothing
    assert m.num_tokens == len(ids) - 3
    m.reset()
    assert m.num_tokens == 0
    with pytest.raises(fcg.MatcherError):
        m.rollback(1)


def test_stop_terminates(compiler, vocab):
    grammar = compiler.compile_grammar(weather_grammar())
    eos = vocab.stop_ids[0]
    m = fcg.Matcher(grammar)
    assert not m.accept_token(eos)
    assert m.accept_string('{"location":"x"}')
    assert m.accept_token(eos)
    assert m.is_terminated()
    assert not m.accept_token(vocab.tokens.index(b"a"))
    assert allowed_ids(m, vocab) == set(vocab.stop_ids)


def test_budget_walks_end_complete(compiler, vocab):
    """An adversarial sampler with a token budget always ends with a complete value."""
    for make in (weather_grammar, nested_grammar):
        grammar = compiler.compile_grammar(make())
        rng = random.Random(7)
        for budget in (16, 20, 40):  # the weather object needs 15 bytes at least
            for _ in range(20):
                m = fcg.Matcher(grammar, max_tokens=budget)
                n = 0
                while not m.is_terminated() and n < budget:
                    allowed = sorted(allowed_ids(m, vocab))
                    assert allowed
                    assert m.accept_token(rng.choice(allowed))
                    n += 1
                assert m.is_accepting(), (make.__name__, budget)


def test_budget_below_the_byte_bound_heads_for_the_shortest_ending(compiler, vocab):
    """Below the one-token-per-byte bound, the mask keeps only the tokens that bring the output closer to
    its end."""
    grammar = compiler.compile_grammar(weather_grammar())
    m = fcg.Matcher(grammar, max_tokens=3)
    allowed = allowed_ids(m, vocab)
    assert allowed and all(vocab.tokens[t].startswith(b"{") for t in allowed)
    longest = max(allowed, key=lambda t: len(vocab.tokens[t]))
    assert b'{"location":"'.startswith(vocab.tokens[longest]) or vocab.tokens[longest].startswith(b'{"')


@pytest.mark.parametrize("schema", [
    {"type": "string", "pattern": "\\d{4}-"},  # unanchored: digits, then '-', anywhere in the string
    {"type": "string"},  # a string body: masks from the precomputed string sets
    {"type": "object", "properties": {"location": {"type": "string"}, "days": {"type": "integer"}},
     "required": ["location"]},
])
def test_tight_budget_masks_are_exactly_what_accept_allows(compiler, vocab, schema):
    """Within the budget and below it (where the mask falls back to the tokens that bring the output
    closer to its end), accept_token takes exactly the tokens of the mask, at every step."""
    grammar = compiler.compile_json_schema(schema)
    rng = random.Random(3)
    bound = fcg.Matcher(grammar).min_cost_to_finish  # one token per byte: enough, whatever is sampled
    for budget in list(range(1, 9)) + [bound, bound + 2]:
        for _ in range(3):
            m = fcg.Matcher(grammar, max_tokens=budget)
            while not m.is_terminated() and m.num_tokens < budget:
                allowed = check_mask_exact(m, vocab)
                assert allowed, (budget, m.num_tokens)
                assert m.accept_token(rng.choice(sorted(allowed)))
            check_mask_exact(m, vocab)  # spent: the stop token if complete, else nothing
            if budget >= bound:
                assert m.is_accepting(), budget


def test_forced_bytes(compiler, vocab):
    grammar = compiler.compile_grammar(weather_grammar())
    m = fcg.Matcher(grammar)
    assert m.forced_bytes() == b'{"location":"'
    m.accept_string('{"location":"x"')
    assert m.forced_bytes() == b""  # ',' or '}'
    m.accept_string(",")
    assert m.forced_bytes() == b'"unit":"'


def test_forced_tokens_at_partial_characters():
    """Forced bytes that start or end inside a UTF-8 character (after a token that split one, or where
    two choices share a character's first bytes) give the tokens of the whole characters only."""
    from conftest import TOKENIZERS, data_path

    vocab = fcg.Vocabulary.from_tokenizer_json(data_path(TOKENIZERS["gpt2"]))
    compiler = fcg.Compiler(vocab)
    m = fcg.Matcher(compiler.compile_json_schema({"enum": ["거실"]}))
    assert m.accept_tokens(vocab.encode('"'))
    assert m.accept_token(vocab.tokens.index("거".encode()[:1]))  # one byte of a three-byte character
    assert m.forced_bytes().startswith("거".encode()[1:])
    assert m.forced_tokens() == []
    g = Grammar()
    g.add_rule("root", seq(lit("<"), alt(lit("가"), lit("각"))))  # EA B0 80 / EA B0 81: raw, no escapes
    m = fcg.Matcher(compiler.compile_grammar(g))
    assert m.forced_bytes() == b"<\xea\xb0"
    forced = m.forced_tokens()
    assert vocab.decode(forced) == b"<" and m.accept_tokens(forced)


def test_batch_fill_matches_single(compiler, vocab):
    grammar = compiler.compile_grammar(nested_grammar())
    ms = [fcg.Matcher(grammar) for _ in range(6)]
    for i, m in enumerate(ms):
        m.accept_string(["[", '["a', "[1,", '"', "[[", ""][i])
    batch = fcg.allocate_token_bitmask(8, vocab.size)
    fcg.fill_next_token_bitmask_batch(ms, batch, indices=[0, 1, 2, 3, 4, 7], threads=2)
    for row, m in zip([0, 1, 2, 3, 4, 7], ms):
        one = fcg.allocate_token_bitmask(1, vocab.size)
        m.fill_next_token_bitmask(one)
        assert np.array_equal(one[0], batch[row])


def test_bitmask_errors(compiler, vocab):
    grammar = compiler.compile_grammar(weather_grammar())
    m = fcg.Matcher(grammar)
    with pytest.raises(fcg.MatcherError):
        m.fill_next_token_bitmask(np.zeros((1, 3), dtype=np.int32))
    with pytest.raises(fcg.MatcherError):
        m.fill_next_token_bitmask(np.zeros((1, 100), dtype=np.int64))
    with pytest.raises(fcg.MatcherError):
        m.fill_next_token_bitmask(fcg.allocate_token_bitmask(1, vocab.size), index=4)
    words = fcg.allocate_token_bitmask(1, vocab.size).shape[1]
    bad = [np.zeros((1, words), dtype=np.uint32),                   # unsigned
           np.zeros((2, words), dtype=np.int32, order="F"),         # not C-contiguous
           np.zeros((1, 2 * words), dtype=np.int32)[:, ::2],        # strided view
           np.zeros((1, 1, words), dtype=np.int32),                 # 3-D
           np.zeros((1, words), dtype=np.int32).view(np.float32),   # 4-byte, not int
           np.zeros((1, words), dtype=">i4")]                       # int32, other byte order
    ro = np.zeros((1, words), dtype=np.int32)
    ro.flags.writeable = False
    for arr in bad + [ro, bytearray(4 * words), [0] * words]:
        with pytest.raises(fcg.MatcherError):
            m.fill_next_token_bitmask(arr)
    # accepted without conversion: a row view of a 2-D bitmask, 1-D arrays, explicit byte orders
    big = fcg.allocate_token_bitmask(3, vocab.size)
    ref = fcg.allocate_token_bitmask(1, vocab.size)
    m.fill_next_token_bitmask(ref)
    m.fill_next_token_bitmask(big[1:], index=1)
    assert np.array_equal(big[2], ref[0])
    class Sub(np.ndarray):  # not read from the array struct: through the buffer protocol
        pass

    for arr in (np.zeros(words, dtype=np.int32), np.zeros((1, words), dtype="<i4"), np.zeros((1, words), dtype="=i4"),
                np.zeros((1, words), dtype=np.int32).view(Sub)):
        m.fill_next_token_bitmask(arr)
        assert np.array_equal(arr.reshape(-1), ref[0])


def test_apply_bitmask_numpy():
    logits = np.zeros((2, 70), dtype=np.float32)
    bm = fcg.allocate_token_bitmask(2, 70)
    bm[:] = 0
    bm[0, 0] = 1 << 5
    bm[1, 2] = 1 << 1  # token 65
    fcg.apply_token_bitmask_inplace(logits, bm)
    assert np.isfinite(logits[0]).sum() == 1 and logits[0, 5] == 0
    assert np.isfinite(logits[1]).sum() == 1 and logits[1, 65] == 0
    # indices: only row 1
    logits = np.zeros((2, 70), dtype=np.float64)
    fcg.apply_token_bitmask_inplace(logits, bm, indices=[1])
    assert np.isfinite(logits[0]).all() and np.isfinite(logits[1]).sum() == 1


def test_apply_bitmask_torch():
    torch = pytest.importorskip("torch")
    logits = torch.zeros((2, 70))
    bm = fcg.allocate_token_bitmask(2, 70, backend="torch")
    bm[:] = 0
    bm[0, 0] = 1 << 5
    bm[1, 2] = 1 << 1
    fcg.apply_token_bitmask_inplace(logits, bm)
    assert torch.isfinite(logits[0]).sum() == 1 and logits[0, 5] == 0
    assert torch.isfinite(logits[1]).sum() == 1 and logits[1, 65] == 0
    half = torch.zeros((2, 70), dtype=torch.float16)
    fcg.apply_token_bitmask_inplace(half, bm, indices=[0])
    assert torch.isfinite(half[0]).sum() == 1 and torch.isfinite(half[1]).all()
    # a torch bitmask fills in place too
    grammar = fcg.Compiler(demo_vocabulary()).compile_grammar(weather_grammar())
    tb = fcg.allocate_token_bitmask(1, grammar.vocab.size, backend="torch")
    fcg.Matcher(grammar).fill_next_token_bitmask(tb)
    assert int(tb.ne(0).sum()) >= 1


def test_left_recursion_is_a_grammar_error(compiler):
    g = Grammar()
    a = g.add_rule("a")
    g.set_rule(a, alt(lit("x"), seq(ref(a), lit("y"))))
    with pytest.raises(fcg.GrammarError, match="left recursion"):
        compiler.compile_grammar(g)


def test_size_limit_is_a_limit_error(vocab):
    g = Grammar()
    g.add_rule("root", rep(cp(ANY_CODEPOINT, json=True), 0, 50_000))
    with pytest.raises(fcg.LimitError):
        fcg.Compiler(vocab, max_nfa_states=100_000).compile_grammar(g)


def test_budget_does_not_count_the_stop_token(compiler, vocab):
    """An output completed by the last token of the budget can still stop (max_tokens counts the output)."""
    grammar = compiler.compile_json_schema({"type": "integer"})
    m = fcg.Matcher(grammar, max_tokens=1)
    digit = vocab.tokens.index(b"7")
    assert m.accept_token(digit) and m.is_accepting()
    mask = fcg.allocate_token_bitmask(1, vocab.size)
    m.fill_next_token_bitmask(mask)
    allowed = set(np.flatnonzero(np.unpackbits(mask[0].view(np.uint8), bitorder="little")).tolist())
    assert allowed == set(grammar.stop_ids)
    assert not m.accept_token(digit)
    assert m.accept_token(grammar.stop_ids[0]) and m.is_terminated()


@pytest.fixture(scope="module")
def digit_vocab():
    """Every run of one to three digits is a token (as in Llama 3), some tokens leave the digits."""
    import itertools

    tokens = [bytes([b]) for b in range(256)]
    for n in (2, 3):
        tokens += ["".join(p).encode() for p in itertools.product("0123456789", repeat=n)]
    tokens += [b"0.", b"1.", b"1,", b"12,", b"12}", b"5e", b"7E+", b".5", b"00.", b"123]", b"9,", b'1"', b"<|end|>"]
    return fcg.Vocabulary.from_tokens(tokens, special_ids=[len(tokens) - 1], stop_ids=[len(tokens) - 1])


@pytest.mark.parametrize("schema", [
    {"type": "number"},                                     # fraction digits: one state, then another loop
    {"type": "integer"},                                    # 1-9 alike, 0 on its own
    {"type": "array", "items": {"type": "number"}},
    {"type": "integer", "minimum": 10, "maximum": 999},     # bounded: no digit loop, walked
    {"type": "string", "pattern": "^[0-9]+\\.[0-9]{2}$"},   # digits inside a string
    # after one digit: '.' or more digits, which then loop, then ',,,,' (other bytes, another cost)
    {"type": "string", "pattern": "^([0-9][0-9]+,,,,|[0-9]\\.)$"},
])
def test_digit_run_masks_are_exactly_what_accept_allows(digit_vocab, schema):
    """Masks where the digit-only tokens come from the token index (no walk) hold exactly the tokens
    accept_token takes, with and without a budget (a run's one-digit tokens may cost less than longer ones)."""
    grammar = fcg.Compiler(digit_vocab).compile_json_schema(schema)
    rng = random.Random(5)
    for budget in (None, 2, 3, 5, 12):
        for _ in range(3):
            m = fcg.Matcher(grammar, max_tokens=budget)
            while not m.is_terminated() and m.num_tokens < (budget or 12):
                allowed = check_mask_exact(m, digit_vocab)
                assert allowed, (budget, m.num_tokens)
                assert m.accept_token(rng.choice(sorted(allowed)))


@pytest.fixture(scope="module")
def literal_vocab():
    """Pieces of keys and names, alone, escaped (``\\u0061`` for ``a``) and mixed, and tokens that run
    past a literal into what follows it."""
    tokens = [bytes([b]) for b in range(256)]
    tokens += [b"na", b"me", b"name", b'"name"', b'":', b'":"', b'":1', b'":{"', b'"}', b'"},', b"}}",
               b"\\u", b"\\u00", b"\\u006", b"\\u006e", b"n\\", b"na\\u006d", b"n\\u0061", b"\\u0061me",
               b'e\\u0022', b'\\\\', b'\\"', b"ar", b"args", b"arg", b'gs":{"', b"ci", b"city", b'"ci',
               b"get_", b"get_we", b"weather", b"ather", b"_weather", b"unit", b'"unit":"', b"celsius",
               b"cel", b"fahren", b"heit", b'"f', b'"c', b"<|end|>"]
    return fcg.Vocabulary.from_tokens(tokens, special_ids=[len(tokens) - 1], stop_ids=[len(tokens) - 1])


@pytest.mark.parametrize("schema", [
    {"type": "object", "properties": {"name": {"const": "get_weather"},
                                      "args": {"type": "object", "properties": {"city": {"type": "string"}},
                                               "required": ["city"]}},
     "required": ["name", "args"]},
    {"type": "object", "properties": {"unit": {"enum": ["celsius", "fahrenheit"]}, "name": {"type": "integer"}},
     "required": ["unit"]},
    {"type": "array", "items": {"const": "name"}, "minItems": 1, "maxItems": 3},
])
def test_literal_run_masks_are_exactly_what_accept_allows(literal_vocab, schema):
    """Keys, const and enum names are read through runs of literal links (no DFA state per byte), where
    each character may also come escaped: masks hold exactly the tokens accept_token takes, along walks
    that take escaped and mixed tokens, with and without a budget."""
    grammar = fcg.Compiler(literal_vocab).compile_json_schema(schema)
    for budget in (None, 6, 9, 14, 40):
        for seed in range(4):
            rng = random.Random(seed)
            m = fcg.Matcher(grammar, max_tokens=budget)
            reachable = budget is not None and m.min_tokens_to_finish <= budget
            while not m.is_terminated() and m.num_tokens <= (budget or 40):
                allowed = check_mask_exact(m, literal_vocab)
                if not allowed:  # out of budget (one it could not meet from the start)
                    assert not reachable and m.num_tokens == budget, (budget, m.num_tokens)
                    break
                # Prefer tokens with an escape (the side byte) half of the time.
                escaped = sorted(t for t in allowed
                                 if t < len(literal_vocab.tokens) and b"\\" in literal_vocab.tokens[t])
                pick = rng.choice(escaped) if escaped and rng.random() < 0.5 else rng.choice(sorted(allowed))
                assert m.accept_token(pick)
            if reachable:  # the budget-aware mask ends every walk within it
                assert m.is_terminated() and m.num_tokens <= budget + 1
