"""The package as users see it: exports, type stubs that match the extension module, docstrings,
and the adapters' arguments."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

import tokengate
from tokengate import _tokengate

STUB = Path(tokengate.__file__).with_name("_tokengate.pyi")


def stub_tree():
    return ast.parse(STUB.read_text())


def runtime_public(obj):
    return {n for n in vars(obj) if not n.startswith("_")}


def test_the_stub_matches_the_extension_module():
    tree = stub_tree()
    stub_classes = {c.name: c for c in tree.body if isinstance(c, ast.ClassDef)}
    stub_functions = {f.name for f in tree.body if isinstance(f, ast.FunctionDef)}
    runtime_classes = {n for n, v in vars(_tokengate).items() if inspect.isclass(v)}
    runtime_functions = {
        n for n, v in vars(_tokengate).items() if callable(v) and not inspect.isclass(v) and not n.startswith("_")
    }
    assert set(stub_classes) == runtime_classes
    assert stub_functions == runtime_functions
    for name, node in stub_classes.items():
        in_stub = {f.name for f in node.body if isinstance(f, ast.FunctionDef) and not f.name.startswith("_")}
        assert in_stub == runtime_public(getattr(_tokengate, name)), name


def test_the_stub_signatures_match_the_runtime_ones():
    for node in stub_tree().body:
        if not isinstance(node, ast.ClassDef):
            continue
        cls = getattr(_tokengate, node.name)
        for f in node.body:
            if not isinstance(f, ast.FunctionDef) or any(
                isinstance(d, ast.Name) and d.id == "property" for d in f.decorator_list
            ):
                continue
            if f.name.startswith("__") and f.name != "__init__":
                continue  # slots: CPython writes their signatures
            target = cls if f.name == "__init__" else getattr(cls, f.name, None)
            signature = getattr(target, "__text_signature__", None)
            if signature is None:
                continue
            runtime = [p.strip().split("=")[0] for p in signature.strip("()").split(",") if p.strip()]
            runtime = [p for p in runtime if p not in ("$self", "$cls", "/", "$type")]
            args = f.args
            stubbed = [a.arg for a in args.posonlyargs + args.args if a.arg != "self"]
            if args.kwonlyargs:
                stubbed += ["*"] + [a.arg for a in args.kwonlyargs]
            assert stubbed == runtime, f"{node.name}.{f.name}: stub {stubbed}, runtime {runtime}"


def test_every_public_name_is_exported_and_documented():
    for name in tokengate.__all__:
        obj = getattr(tokengate, name)
        if inspect.isclass(obj):
            assert obj.__doc__ and obj.__doc__.strip(), name
            for member, value in vars(obj).items():
                if not member.startswith("_") and callable(value):
                    assert value.__doc__, f"{name}.{member}"


def test_adapters_refuse_what_they_cannot_scope():
    import tokengate.requests

    gate = tokengate.Gate()
    with pytest.raises(TypeError):
        tokengate.requests.TokenAuth(gate)  # which origin gets the token?
    with pytest.raises(ValueError):
        tokengate.requests.TokenAuth(gate, "ftp://example.com")
    with pytest.raises(TypeError):
        tokengate.requests.TokenAuth(object(), "https://example.com")
