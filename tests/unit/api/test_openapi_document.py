"""The OpenAPI document against the routes and the rules (docs/conventions.md, rule 16).

Walks every operation of the real app's document and re-derives, from the document and
the route alone (not from api/openapi.py's own derivation), the errors its shape
implies: a required or optional token (401), an id in the path (404), parameters or a
body (422), a JSON body (400, 413), a lane admission control may shed (503), and the
routes that reach the node's services (503). Every error answer must carry the one
error body. The request schemas must say what the rules say: handles, passwords,
titles, reactions, pinned links, with this node's settings. The fuzzing test
(tests/e2e/test_openapi_fuzz.py) checks the rest against a running node.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from fastapi.routing import APIRoute
from pydantic import ValidationError

from pnyx.api.admission import classify
from pnyx.api.app import ROUTERS, create_app
from pnyx.api.errors import STATUS, error_body
from pnyx.api.notifications import ReadIn
from pnyx.api.openapi import ERROR_REF, ErrorOut
from pnyx.api.schemas import NewAccount, NewSpace, PinIn, ReactionIn, SpaceEditIn
from pnyx.api.signed import read_space
from pnyx.config import Settings
from pnyx.domain import rules
from pnyx.domain.commands import Pin
from pnyx.domain.errors import RuleViolation
from pnyx.domain.types import Handle, Limits, SpaceId, SpeakPolicy
from pnyx.errors import ErrorKind, PnyxError
from pnyx.services.accounts import normalise_handle
from pnyx.services.admission import Lane
from pnyx.services.listeners import EMOJIS
from pnyx.services.password_policy import MAX_PASSWORD_LEN

ERROR_STATUSES = frozenset(STATUS.values())
SIGNED_PREFIX = "/p/{exp}/{sig}"
METHODS = ("get", "put", "post", "delete", "options", "head", "patch")


@pytest.fixture(scope="module")
def doc(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    data = tmp_path_factory.mktemp("openapi")
    settings = Settings(data_dir=Path(data), serve_web=False)
    return create_app(settings).openapi()


def _operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, op)
        for path, item in doc["paths"].items()
        for method, op in item.items()
        if method in METHODS
    ]


def _routes() -> dict[tuple[str, str], APIRoute]:
    found = {}
    for router in ROUTERS:
        for route in router.routes:
            if isinstance(route, APIRoute) and route.include_in_schema:
                for method in route.methods:
                    found[(method, route.path)] = route
                    if method == "GET" and read_space(route.path) is not None:
                        # its signed form, served by api/signed.py's middleware
                        found[(method, SIGNED_PREFIX + route.path)] = route
    return found


def _is_error_schema(schema: dict[str, Any]) -> bool:
    return schema == {"$ref": ERROR_REF} or {"$ref": ERROR_REF} in schema.get("anyOf", [])


def _shed(method: str, path: str) -> bool:
    lane = classify(method, path.replace("{", "x").replace("}", ""))
    return lane is not None and lane is not Lane.STAGE


def _reaches_services(route: APIRoute) -> bool:
    params = route.dependant.dependencies
    return any(getattr(d.call, "__name__", "") == "get_services" for d in _flat(params))


def _flat(deps: list[Any]) -> list[Any]:
    out = []
    for dep in deps:
        out.append(dep)
        out.extend(_flat(dep.dependencies))
    return out


def test_every_route_is_in_the_document(doc: dict[str, Any]) -> None:
    documented = {(method, path) for method, path, _ in _operations(doc)}
    assert set(_routes()) == documented


def test_every_error_a_route_shape_implies_is_documented(doc: dict[str, Any]) -> None:
    routes = _routes()
    missing = []
    for method, path, op in _operations(doc):
        documented = {int(status) for status in op["responses"] if status.isdigit()}
        expected: set[int] = set()
        if op.get("security"):
            expected.add(401)
        if "{space_id}" in path or "{handle}" in path:
            expected.add(404)
        if op.get("parameters") or "requestBody" in op:
            expected.add(422)
        if "application/json" in op.get("requestBody", {}).get("content", {}):
            expected |= {400, 413}
        if _shed(method, path) or _reaches_services(routes[(method, path)]):
            expected.add(503)
        if expected - documented:
            missing.append(f"{method} {path}: {sorted(expected - documented)}")
    assert missing == []


def test_every_error_answer_has_the_error_body(doc: dict[str, Any]) -> None:
    wrong = []
    for method, path, op in _operations(doc):
        for status, response in op["responses"].items():
            if int(status) < 400:
                continue
            if int(status) not in ERROR_STATUSES:
                wrong.append(f"{method} {path} {status}: not a status errors.STATUS gives")
            schema = response.get("content", {}).get("application/json", {}).get("schema", {})
            if not _is_error_schema(schema):
                wrong.append(f"{method} {path} {status}: {schema}")
            if int(status) in (429, 503) and "Retry-After" not in response.get("headers", {}):
                wrong.append(f"{method} {path} {status}: Retry-After undocumented")
    assert wrong == []


def test_the_error_body_schema_is_what_the_server_sends(doc: dict[str, Any]) -> None:
    schema = doc["components"]["schemas"]["ErrorOut"]
    assert schema["required"] == ["error"]
    detail = doc["components"]["schemas"]["ErrorDetail"]
    assert set(detail["required"]) == {"kind", "code", "message"}
    kinds = doc["components"]["schemas"]["ErrorKind"]["enum"]
    assert kinds == [kind.value for kind in ErrorKind]
    for kind in ErrorKind:
        ErrorOut.model_validate(error_body(kind, "some_code", "what was wrong"))


def test_optional_tokens_are_optional_in_the_document(doc: dict[str, Any]) -> None:
    optional = {
        ("POST", "/v1/spaces/{space_id}/join"),
        ("GET", "/v1/spaces/{space_id}/state"),
        ("GET", SIGNED_PREFIX + "/v1/spaces/{space_id}/state"),
        ("OPTIONS", "/v1/spaces/{space_id}/publish"),
        ("GET", "/v1/clips/{clip_id}"),  # a private space's clip needs a token
        ("GET", "/v1/clips/{clip_id}/clip.m4a"),
        ("GET", "/v1/accounts/{handle}"),  # says whether the caller follows
        ("GET", "/v1/accounts/{handle}/spaces"),  # the account itself sees all its spaces
    }
    for method, path, op in _operations(doc):
        security = op.get("security", [])
        assert ({} in security) == ((method, path) in optional), (method, path, security)


# -- the request schemas say what the rules say -------------------------------------------
HANDLES = ["ann", "Ann_1", "a" * 32, "a" * 33, "ab", "a-b", "an n", " ann", "ünï", "", "___"]


@pytest.mark.parametrize("handle", HANDLES)
def test_the_handle_pattern_is_the_rule(doc: dict[str, Any], handle: str) -> None:
    pattern = doc["components"]["schemas"]["NewAccount"]["properties"]["handle"]["pattern"]
    try:
        normalise_handle(handle)
        rule = handle == handle.strip()  # the model refuses what the rule would strip
    except PnyxError:
        rule = False
    assert bool(re.search(pattern, handle)) == rule
    try:
        NewAccount(handle=handle, password="correct horse")
        model = True
    except ValidationError:
        model = False
    assert model == rule


def test_bounds_that_are_settings_are_this_nodes(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, serve_web=False, min_password_len=12, max_title_len=40)
    doc = create_app(settings).openapi()
    schemas = doc["components"]["schemas"]
    password = schemas["NewAccount"]["properties"]["password"]
    assert (password["minLength"], password["maxLength"]) == (12, MAX_PASSWORD_LEN)
    assert schemas["NewSpace"]["properties"]["title"]["maxLength"] == 40


def test_reactions_and_pins_are_what_the_rules_take(doc: dict[str, Any]) -> None:
    schemas = doc["components"]["schemas"]
    assert set(schemas["ReactionIn"]["properties"]["emoji"]["enum"]) == EMOJIS
    ReactionIn(emoji=next(iter(EMOJIS)))
    url = schemas["PinIn"]["properties"]["url"]["anyOf"][0]
    assert url["maxLength"] == Limits().max_pin_len
    room = rules.new_room(
        SpaceId("s"),
        Handle("host"),
        "title",
        scheduled=False,
        speak_policy=SpeakPolicy.EVERYONE,
        limits=Limits(),
        now=0.0,
    )
    for candidate in ["https://example.org/x", "HTTP://a.b", "ftp://a.b", "https://", "x"]:
        documented = re.search(url["pattern"], candidate) is not None
        try:
            PinIn(url=candidate)
            model = True
        except ValidationError:
            model = False
        try:
            rules.decide(room, Pin(Handle("host"), candidate), 1.0)
            rule = True
        except RuleViolation:
            rule = False
        assert documented == model, candidate
        assert not (documented and not rule), f"the document takes {candidate!r}, the rule not"


def test_blank_titles_are_refused_by_the_model() -> None:
    with pytest.raises(ValidationError):
        NewSpace(title="   ")
    NewSpace(title=" a ")


@pytest.mark.parametrize("value", [0, 1.5, "0", "1700000000", "2026-01-31", True, None])
def test_instants_in_bodies_are_date_time_strings_only(doc: dict[str, Any], value: Any) -> None:
    # The document says a date-time string; pydantic alone takes a number as unix time.
    schemas = doc["components"]["schemas"]
    for model, field in ((NewSpace, "scheduled_start"), (SpaceEditIn, "scheduled_start")):
        documented = schemas[model.__name__]["properties"][field]["anyOf"][0]
        assert documented == {"type": "string", "format": "date-time"}
        body = {"title": "t", field: value} if model is NewSpace else {field: value}
        if value is None:
            model.model_validate(body)  # null: not scheduled
            continue
        with pytest.raises(ValidationError, match="ISO 8601"):
            model.model_validate(body)
    read = schemas["ReadIn"]["properties"]["until"]["anyOf"][0]
    assert read == {"type": "string", "format": "date-time"}
    if value is not None:
        with pytest.raises(ValidationError, match="ISO 8601"):
            ReadIn.model_validate({"until": value})
    ok = "2026-01-31T18:00:00+01:00"
    assert NewSpace.model_validate({"title": "t", "scheduled_start": ok}).scheduled_start
    assert ReadIn.model_validate({"until": ok}).until
