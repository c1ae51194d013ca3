"""The hand-written stubs in persona_exp/_core.pyi must describe the native module."""

import ast
import inspect
from pathlib import Path

import persona_exp
from persona_exp import _core

STUB = Path(persona_exp.__file__).with_name("_core.pyi")


def _stub_functions() -> dict[str, list[str]]:
    tree = ast.parse(STUB.read_text())
    return {
        node.name: [a.arg for a in node.args.posonlyargs + node.args.args + node.args.kwonlyargs]
        for node in tree.body
        if isinstance(node, ast.FunctionDef)
    }


def _native_functions() -> dict[str, list[str]]:
    return {
        name: list(inspect.signature(obj).parameters)
        for name, obj in vars(_core).items()
        if callable(obj) and not name.startswith("_")
    }


def test_stub_names_match_native_module():
    assert set(_stub_functions()) == set(_native_functions())


def test_stub_parameters_match_native_signatures():
    native = _native_functions()
    for name, params in _stub_functions().items():
        assert params == native[name], name


def test_package_ships_type_marker():
    assert Path(persona_exp.__file__).with_name("py.typed").exists()
