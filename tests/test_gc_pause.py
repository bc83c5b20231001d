"""The compilers pause the cyclic garbage collector and always restore it as it was."""
import gc
import threading

import pytest

from fcgrammar import _gc
from fcgrammar.errors import SchemaError
from fcgrammar.json_schema import schema_to_grammar


@pytest.fixture(autouse=True)
def _restore_gc():
    was = gc.isenabled()
    yield
    (gc.enable if was else gc.disable)()


def test_paused_nests_and_restores():
    gc.enable()
    with _gc.paused():
        assert not gc.isenabled()
        with _gc.paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the outer body still runs
    assert gc.isenabled()


def test_paused_keeps_a_disabled_collector_disabled():
    gc.disable()
    with _gc.paused():
        pass
    assert not gc.isenabled()


def test_paused_restores_after_an_error():
    gc.enable()
    with pytest.raises(SchemaError):
        schema_to_grammar({"type": "object", "properties": {"a": {"type": "nonsense"}}})
    assert gc.isenabled()


def test_collector_returns_when_the_last_thread_ends():
    gc.enable()
    inside = threading.Barrier(3)
    leave = threading.Event()

    def body():
        with _gc.paused():
            inside.wait()
            leave.wait()

    threads = [threading.Thread(target=body) for _ in range(2)]
    for t in threads:
        t.start()
    inside.wait()
    assert not gc.isenabled()
    leave.set()
    for t in threads:
        t.join()
    assert gc.isenabled()


def test_schema_compile_leaves_the_collector_enabled():
    gc.enable()
    schema_to_grammar({"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]})
    assert gc.isenabled()


def test_tool_turn_compile_leaves_the_collector_enabled():
    import fcgrammar as fcg
    from fcgrammar.demo_vocab import demo_vocabulary

    gc.enable()
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    fcg.Compiler(demo_vocabulary()).compile_tools(tools, format="hermes", tool_choice="required")
    assert gc.isenabled()
