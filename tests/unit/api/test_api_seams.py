"""The API layer reaches the node only through its services (docs/conventions.md, rule 8).

The import-linter layers let ``pnyx.api`` import anything beneath it; these checks say
more. Every module of src/pnyx/api is parsed and may not

* touch an attribute named ``store``, ``live``, ``settings`` or ``node`` (the node's
  backends, its configuration, or the node itself, e.g. ``request.app.state.node``),
  nor name one in ``getattr``/``setattr``/``hasattr``/``delattr``;
* touch another object's private attribute (``services.spaces._store``);
* import ``pnyx.store``, ``pnyx.live``, ``pnyx.media`` (what the services wrap),
  ``pnyx.config`` (settings come as ``Services.config``) or ``pnyx.services.node``.

``ALLOWED`` lists the exceptions, all in app.py: it builds the app from the settings,
opens the node in its lifespan and leaves it on ``app.state.node`` for tests. And at
run time: no route handler or dependency of the real app asks for the node, its store,
its live state or its settings, and ``Services`` holds none of them.
"""

from __future__ import annotations

import ast
import importlib
import typing
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import pytest
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, APIRouter, APIWebSocketRoute

import pnyx.api
from pnyx.api.app import create_app
from pnyx.api.deps import get_services
from pnyx.config import Settings
from pnyx.live.base import LiveState
from pnyx.live.memory import MemoryLiveState
from pnyx.live.redis import RedisLiveState
from pnyx.services.facade import Services
from pnyx.services.node import Node
from pnyx.store.db import Store

API_DIR = Path(pnyx.api.__file__).parent

FORBIDDEN_ATTRIBUTES = frozenset({"store", "live", "settings", "node"})
FORBIDDEN_MODULES = ("pnyx.store", "pnyx.live", "pnyx.media", "pnyx.config", "pnyx.services.node")
REFLECTION = frozenset({"getattr", "setattr", "hasattr", "delattr"})
ALLOWED = frozenset(
    {
        ("app.py", "import pnyx.config"),  # create_app(settings): the wiring
        ("app.py", "import pnyx.services.node"),  # the lifespan opens and closes the node
        ("app.py", "attribute .node"),  # app.state.node, for tests (never read in api/)
    }
)


@dataclass(frozen=True, slots=True)
class Reach:
    line: int
    what: str  # "attribute .store", "import pnyx.live.base", "private attribute ._store", …


def _forbidden_module(name: str) -> bool:
    return any(name == m or name.startswith(m + ".") for m in FORBIDDEN_MODULES)


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _imported(node: ast.Import | ast.ImportFrom, package: str) -> Iterator[str]:
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names)
        return
    if node.level:  # relative: resolved against the module's package
        base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
        module = f"{base}.{node.module}" if node.module else base
    else:
        module = node.module or ""
    yield module
    yield from (f"{module}.{alias.name}" for alias in node.names)  # from pnyx import store


def reaches(source: str, package: str = "pnyx.api") -> list[Reach]:
    """Every reach past the services in ``source``, a module of ``package``."""
    found: list[Reach] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute):
            if node.attr in FORBIDDEN_ATTRIBUTES:
                found.append(Reach(node.lineno, f"attribute .{node.attr}"))
            elif _private(node.attr) and not (
                isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")
            ):
                found.append(Reach(node.lineno, f"private attribute .{node.attr}"))
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in REFLECTION
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
            and isinstance(node.args[1].value, str)
            and (node.args[1].value in FORBIDDEN_ATTRIBUTES or _private(node.args[1].value))
        ):
            found.append(Reach(node.lineno, f"{node.func.id}(…, {node.args[1].value!r})"))
        elif isinstance(node, ast.Import | ast.ImportFrom):
            for name in _imported(node, package):
                if _forbidden_module(name):
                    root = next(m for m in FORBIDDEN_MODULES if name == m or name.startswith(m))
                    found.append(Reach(node.lineno, f"import {root}"))
                    break
    return found


def _api_modules() -> list[Path]:
    return sorted(API_DIR.glob("*.py"))


def test_the_checker_reads_every_api_module() -> None:
    names = {p.name for p in _api_modules()}
    assert {"app.py", "deps.py", "spaces.py", "members.py", "listeners.py", "ops.py"} <= names


@pytest.mark.parametrize("path", _api_modules(), ids=lambda p: p.name)
def test_no_api_module_reaches_past_the_services(path: Path) -> None:
    found = reaches(path.read_text(encoding="utf-8"))
    bad = [f"{path.name}:{r.line}: {r.what}" for r in found if (path.name, r.what) not in ALLOWED]
    assert bad == [], "route handlers use Services (services/facade.py) only:\n" + "\n".join(bad)


def test_every_allowance_is_still_needed() -> None:
    used = {
        (path.name, r.what)
        for path in _api_modules()
        for r in reaches(path.read_text(encoding="utf-8"))
    }
    assert not ALLOWED - used, f"stale allowances: {sorted(ALLOWED - used)}"


@pytest.mark.parametrize(
    ("snippet", "what"),
    [
        ("async def h(node):\n    return await node.store.x()\n", "attribute .store"),
        ("snap = await services.live.get_snapshot(space)\n", "attribute .live"),
        ("ttl = node.settings.space_cache_s\n", "attribute .settings"),
        ("node = request.app.state.node\n", "attribute .node"),
        ("store = getattr(services, 'store')\n", "getattr(…, 'store')"),
        ("social = services.directory._spaces\n", "private attribute ._spaces"),
        ("from pnyx.store.db import Store\n", "import pnyx.store"),
        ("import pnyx.live.memory\n", "import pnyx.live"),
        ("from pnyx import live\n", "import pnyx.live"),
        ("from pnyx.media.recording import Recordings\n", "import pnyx.media"),
        ("from pnyx.config import Settings\n", "import pnyx.config"),
        ("from pnyx.services.node import Node\n", "import pnyx.services.node"),
        ("from ..store import db\n", "import pnyx.store"),
    ],
)
def test_the_checker_catches_a_reach(snippet: str, what: str) -> None:
    assert [r.what for r in reaches(snippet)] == [what]


def test_the_checker_lets_service_calls_through() -> None:
    ok = (
        "from pnyx.services.facade import Services\n"
        "from pnyx.api import media\n"
        "class S:\n"
        "    def __init__(self, ws):\n"
        "        self._ws = ws\n"
        "async def h(services: Services, space_id: str):\n"
        "    state = getattr(request.app, 'state', None)\n"
        "    return await services.directory.followed_live(services.config.space_cache_s)\n"
    )
    assert reaches(ok) == []


# -- at run time ----------------------------------------------------------------------
NOT_FOR_THE_API: tuple[Any, ...] = (
    Node,
    Store,
    LiveState,
    MemoryLiveState,
    RedisLiveState,
    Settings,
)


def _mentions_forbidden(annotation: Any) -> bool:
    """Whether a type hint is, or has among its arguments, one of ``NOT_FOR_THE_API``."""
    if isinstance(annotation, list):  # Callable's parameters
        return any(_mentions_forbidden(arg) for arg in annotation)
    if any(annotation is forbidden for forbidden in NOT_FOR_THE_API):
        return True
    return any(_mentions_forbidden(arg) for arg in typing.get_args(annotation))


def _calls(dependant: Dependant) -> Iterator[Callable[..., Any]]:
    if dependant.call is not None:
        yield dependant.call
    for sub in dependant.dependencies:
        yield from _calls(sub)


def test_services_hold_no_store_live_state_or_settings() -> None:
    names = {f.name for f in fields(Services)}
    assert not names & FORBIDDEN_ATTRIBUTES
    hints = typing.get_type_hints(Services)
    assert not [name for name, hint in hints.items() if _mentions_forbidden(hint)]
    assert typing.get_type_hints(get_services)["return"] is Services


def _routes(tmp_path: Path) -> list[APIRoute | APIWebSocketRoute]:
    """The app's own routes and those of every router in src/pnyx/api."""
    routes = list(create_app(Settings(data_dir=tmp_path, serve_web=True)).routes)
    for path in _api_modules():
        router = getattr(importlib.import_module(f"pnyx.api.{path.stem}"), "router", None)
        if isinstance(router, APIRouter):
            routes += router.routes
    return [r for r in routes if isinstance(r, APIRoute | APIWebSocketRoute)]


def test_no_route_or_dependency_asks_for_the_node(tmp_path: Path) -> None:
    routes = _routes(tmp_path)
    assert len(routes) > 30 and any(isinstance(r, APIWebSocketRoute) for r in routes)
    asked = []
    for route in routes:
        for call in _calls(route.dependant):
            try:
                hints = typing.get_type_hints(call)
            except (NameError, TypeError):  # a class instance (e.g. HTTPBearer): no annotations
                hints = typing.get_type_hints(type(call).__call__)
            asked += [
                f"{route.path}: {getattr(call, '__name__', call)}({name})"
                for name, hint in hints.items()
                if _mentions_forbidden(hint)
            ]
    assert asked == []
