"""Every error kind a route's code can raise is in its OpenAPI document.

A small static analysis: from each route handler, follow the calls the code makes into
Pnyx (``services.accounts.register(…)``, ``self._store.accounts.get(…)``, module
functions such as ``rules.decide``, exception classes), resolving receivers by their
annotations, and collect every ``ErrorKind.X`` handed to a call (``PnyxError(ErrorKind.
CONFLICT, …)``, ``conflict(…)``'s body, ``unavailable(…)``'s). Calls through protocols
(the live state) and through local variables are not followed; what they raise comes
from the route's shape (tests/unit/api/test_openapi_document.py). It over-approximates:
an error caught and turned into another still counts, so the document lists it too.
"""

from __future__ import annotations

import ast
import inspect
import sys
import textwrap
import types
import typing
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.routing import APIRoute

from pnyx.api.app import ROUTERS, create_app
from pnyx.api.errors import STATUS
from pnyx.config import Settings
from pnyx.errors import ErrorKind
from pnyx.store.translate import translating

# Not followed: the store's net under every query (store/translate.py). Its UNAVAILABLE is
# documented for every route that reaches the services; a CONFLICT or INVALID from it
# (an integrity or data error the repository did not foresee) is a bug to fix, not an
# answer to document.
NOT_FOLLOWED = frozenset({inspect.unwrap(translating)})


def _unwrap(tp: Any) -> Any:
    """``X | None``, ``Annotated[X, …]`` → ``X``; anything not a Pnyx class → None."""
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(tp)[0])
    if origin in (typing.Union, types.UnionType):
        found = [_unwrap(a) for a in typing.get_args(tp) if a is not type(None)]
        return found[0] if len(found) == 1 else None
    if isinstance(tp, type) and tp.__module__.startswith("pnyx."):
        return tp
    return None


def _hints(obj: Any) -> dict[str, Any]:
    try:
        return typing.get_type_hints(obj, include_extras=True)
    except Exception:
        return {}


def _attribute_type(cls: type, name: str) -> Any:
    for klass in cls.__mro__:
        hint = _hints(klass).get(name)
        if hint is not None:
            return _unwrap(hint)
    init = getattr(cls, "__init__", None)
    tree = _tree(init)
    if tree is None:
        return None
    params = _hints(init)
    module = sys.modules[cls.__module__]
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if (
                    isinstance(target, ast.Attribute)
                    and isinstance(target.value, ast.Name)
                    and target.value.id == "self"
                    and target.attr == name
                ):
                    if isinstance(node, ast.AnnAssign):
                        return _unwrap(_eval(node.annotation, module))
                    value = node.value
                    if isinstance(value, ast.Name) and value.id in params:
                        return _unwrap(params[value.id])
                    if isinstance(value, ast.Call):
                        return _unwrap(_eval(value.func, module))
    return None


def _eval(node: ast.expr, module: types.ModuleType) -> Any:
    try:
        return eval(compile(ast.Expression(node), "<hint>", "eval"), vars(module))
    except Exception:
        return None


def _tree(func: Any) -> ast.AST | None:
    func = inspect.unwrap(func) if callable(func) else func
    if not (inspect.isfunction(func) and func.__module__.startswith("pnyx.")):
        return None
    try:
        return ast.parse(textwrap.dedent(inspect.getsource(func)))
    except (OSError, TypeError, SyntaxError):
        return None


class Raises:
    def __init__(self) -> None:
        self.memo: dict[Any, set[ErrorKind]] = {}

    def of(self, func: Any, owner: type | None = None) -> set[ErrorKind]:
        key = (func, owner)
        if inspect.unwrap(func) in NOT_FOLLOWED:
            return set()
        if key in self.memo:
            return self.memo[key]
        self.memo[key] = set()  # cycles end here
        tree = _tree(func)
        if tree is None:
            return set()
        module = sys.modules[inspect.unwrap(func).__module__]
        env = {k: _unwrap(v) for k, v in _hints(func).items()}
        if owner is not None:
            env["self"] = owner
        kinds: set[ErrorKind] = set()
        for call in (n for n in ast.walk(tree) if isinstance(n, ast.Call)):
            for arg in [*call.args, *(k.value for k in call.keywords)]:
                kind = _kind(arg)
                if kind is not None:
                    kinds.add(kind)
            for target, target_owner in self._callees(call.func, env, module):
                kinds |= self.of(target, target_owner)
        self.memo[key] = kinds
        return kinds

    def _callees(
        self, func: ast.expr, env: dict[str, Any], module: types.ModuleType
    ) -> Iterator[tuple[Callable[..., Any], type | None]]:
        if isinstance(func, ast.Name):
            target = vars(module).get(func.id)
            yield from _as_callees(target)
        elif isinstance(func, ast.Attribute):
            receiver = _type_of(func.value, env, module)
            if isinstance(receiver, type):
                method = getattr(receiver, func.attr, None)
                if method is not None:
                    yield method, receiver
            elif isinstance(receiver, types.ModuleType):
                yield from _as_callees(getattr(receiver, func.attr, None))


def _as_callees(target: Any) -> Iterator[tuple[Callable[..., Any], type | None]]:
    if inspect.isfunction(target):
        yield target, None
    elif isinstance(target, type) and target.__module__.startswith("pnyx."):
        yield target.__init__, target


def _type_of(node: ast.expr, env: dict[str, Any], module: types.ModuleType) -> Any:
    if isinstance(node, ast.Name):
        if node.id in env:
            return env[node.id]
        value = vars(module).get(node.id)
        if isinstance(value, types.ModuleType) and value.__name__.startswith("pnyx."):
            return value
        return None
    if isinstance(node, ast.Attribute):
        owner = _type_of(node.value, env, module)
        if isinstance(owner, type):
            return _attribute_type(owner, node.attr)
        if isinstance(owner, types.ModuleType):
            value = getattr(owner, node.attr, None)
            return value if isinstance(value, types.ModuleType) else None
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "super":
        return None
    return None


def _kind(node: ast.expr) -> ErrorKind | None:
    if (
        isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id == "ErrorKind"
    ):
        return ErrorKind[node.attr]
    return None


def _routes() -> list[APIRoute]:
    return [
        route
        for router in ROUTERS
        for route in router.routes
        if isinstance(route, APIRoute) and route.include_in_schema
    ]


@pytest.fixture(scope="module")
def doc(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    settings = Settings(data_dir=Path(tmp_path_factory.mktemp("raises")), serve_web=False)
    return create_app(settings).openapi()


def test_the_analysis_sees_through_services_into_the_rules() -> None:
    """The analysis itself: it must find what is known to be raised deep down."""
    found = {route.path: Raises().of(route.endpoint) for route in _routes()}
    assert ErrorKind.RATE_LIMITED in found["/v1/spaces/{space_id}/reactions"]
    assert ErrorKind.CONFLICT in found["/v1/accounts"]  # handle_taken, in the store
    stage = found["/v1/spaces/{space_id}/members/{handle}/mute"]
    assert {ErrorKind.FORBIDDEN, ErrorKind.CONFLICT} <= stage  # permissions and rules


def test_every_kind_a_route_can_raise_is_documented(doc: dict[str, Any]) -> None:
    raises = Raises()
    missing = []
    for route in _routes():
        kinds = raises.of(route.endpoint)
        for method in route.methods:
            op = doc["paths"][route.path][method.lower()]
            documented = {int(status) for status in op["responses"]}
            lacking = sorted(k.value for k in kinds if STATUS[k] not in documented)
            if lacking:
                missing.append(f"{method} {route.path}: {lacking}")
    assert missing == [], "\n".join(missing)
