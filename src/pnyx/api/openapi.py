"""The OpenAPI document tells the truth about errors (docs/conventions.md, rule 16).

A route declares the error kinds its service calls raise, ``responses=raises(…)``; the
kinds that follow from the route's shape are added by ``document_errors``, once, for
every router (``api/app.py`` ``ROUTERS``):

* its dependencies' errors (``DEPENDENCY_ERRORS``): an account or listener token, even an
  optional one (a bad token is refused): 401; a listener token of another space: 403;
  reaching the node's services: 503 (the store or the live state is away);
* a ``space_id`` or ``handle`` path parameter: 404;
* any parameter or body (FastAPI's validation, and the services' own value checks): 422;
* a JSON body: 400 (it does not parse) and 413 (over ``max_body_bytes``);
* a lane admission control may shed (``services/admission.py``; not the stage's): 503
  ``overloaded``.

Each error answer is documented with the one error body, ``ErrorOut``, and the headers
that come with it (``Retry-After`` on 429 and 503, ``WWW-Authenticate`` on 401). The
document also carries the node's real bounds where a bound is a setting
(``min_password_len``, ``max_title_len``), patched in when it is generated (``install``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field

from pnyx.api import deps
from pnyx.api.admission import classify
from pnyx.api.errors import JITTER_HEADER, STATUS
from pnyx.errors import ErrorKind
from pnyx.services.admission import Lane
from pnyx.services.password_policy import MAX_PASSWORD_LEN

ERROR_REF = "#/components/schemas/ErrorOut"


class ErrorDetail(BaseModel):
    kind: ErrorKind = Field(description="The class of failure; it decides the status code.")
    code: str = Field(description="A stable machine-readable reason, e.g. `stage_full`.")
    message: str = Field(description="What was wrong and, where possible, how to fix it.")


class ErrorOut(BaseModel):
    """The body of every error answer."""

    error: ErrorDetail


# What each kind means, as the document says it; a route's notes add its codes.
MEANING: dict[ErrorKind, str] = {
    ErrorKind.MALFORMED: "The request does not parse (`bad_json`, …).",
    ErrorKind.INVALID: "A value breaks a constraint of this document or a rule of the "
    "server (`bad_request` from validation; `bad_handle`, `bad_title`, … from the rules).",
    ErrorKind.UNAUTHENTICATED: "No token where one is needed (`no_token`), or a bad or "
    "expired one (`token_invalid`, `token_expired`, `token_wrong_kind`).",
    ErrorKind.FORBIDDEN: "Authenticated, but this actor may not do this.",
    ErrorKind.NOT_FOUND: "No such thing (`no_space`, `no_account`, …).",
    ErrorKind.CONFLICT: "Well-formed, but the current state forbids it.",
    ErrorKind.GONE: "It existed, but not any more (`link_expired`: ask for a new link).",
    ErrorKind.TOO_LARGE: "The request body is over `max_body_bytes` (`body_too_large`).",
    ErrorKind.UNSUPPORTED: "A content type this route does not take.",
    ErrorKind.RATE_LIMITED: "Too many of these from this client; retry after `Retry-After`.",
    ErrorKind.UNAVAILABLE: "Retry after `Retry-After` seconds: the store or the live state "
    "is unreachable (`database_unavailable`, …).",
}

_RETRY_HEADERS: dict[str, Any] = {
    "Retry-After": {
        "description": "Seconds to wait before retrying.",
        "schema": {"type": "integer", "minimum": 1},
    },
    JITTER_HEADER: {
        "description": "The fraction of `Retry-After` to add at random, so refused clients "
        "do not come back in step.",
        "schema": {"type": "string"},
    },
}
_HEADERS: dict[ErrorKind, dict[str, Any]] = {
    ErrorKind.UNAUTHENTICATED: {
        "WWW-Authenticate": {"description": "`Bearer`", "schema": {"type": "string"}}
    },
    ErrorKind.RATE_LIMITED: _RETRY_HEADERS,
    ErrorKind.UNAVAILABLE: _RETRY_HEADERS,
}

_ORDER = {kind: i for i, kind in enumerate(ErrorKind)}


def raises(
    *kinds: ErrorKind, notes: Mapping[ErrorKind, str] | None = None
) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` of a route whose services raise these kinds. ``notes`` adds a
    route's own codes and meaning to a kind's description."""
    notes = notes or {}
    responses: dict[int | str, dict[str, Any]] = {}
    for kind in sorted(set(kinds) | set(notes), key=_ORDER.__getitem__):
        _add(responses, kind, notes.get(kind))
    return responses


def _add(responses: dict[int | str, dict[str, Any]], kind: ErrorKind, note: str | None) -> None:
    status = STATUS[kind]
    entry = responses.setdefault(status, {})
    said = entry.get("description", "")
    for text in (note, MEANING[kind]):
        if text and text not in said:
            said = f"{said} {text}".strip()
    entry["description"] = said
    ours = {"$ref": ERROR_REF}
    json = entry.setdefault("content", {}).setdefault("application/json", {})
    schema = json.get("schema")
    if schema is None or schema == ours:
        json["schema"] = ours
    elif ours not in schema.get("anyOf", ()):
        json["schema"] = {"anyOf": [schema, ours]}  # a route's own body (/healthz) or ours
    if kind in _HEADERS:
        entry["headers"] = {**_HEADERS[kind], **entry.get("headers", {})}


# -- what follows from the route's shape --------------------------------------------------
# The errors a dependency brings to every route that uses it (directly or through
# another dependency). A new dependency that can refuse a request gets a row here.
DEPENDENCY_ERRORS: dict[Callable[..., Any], frozenset[ErrorKind]] = {
    deps.account: frozenset({ErrorKind.UNAUTHENTICATED}),
    # a bad token is refused even where none is needed
    deps.optional_account: frozenset({ErrorKind.UNAUTHENTICATED}),
    # and a listener token of another space is forbidden
    deps.listener: frozenset({ErrorKind.UNAUTHENTICATED, ErrorKind.FORBIDDEN}),
    # the store or the live state may be away
    deps.get_services: frozenset({ErrorKind.UNAVAILABLE}),
}
_ID_PARAMS = frozenset({"space_id", "handle"})


def _calls(dependant: Dependant) -> Iterable[Callable[..., Any] | None]:
    for dep in dependant.dependencies:
        yield dep.call
        yield from _calls(dep)


def derived(route: APIRoute) -> set[ErrorKind]:
    """The error kinds a route can answer with because of its shape alone."""
    kinds: set[ErrorKind] = set()
    dependant = route.dependant
    for call in set(_calls(dependant)):
        if call is not None:
            kinds |= DEPENDENCY_ERRORS.get(call, frozenset())
    path_params = {p.name for p in dependant.path_params}
    for dep in dependant.dependencies:
        path_params |= {p.name for p in dep.path_params}
    if path_params & _ID_PARAMS:
        kinds.add(ErrorKind.NOT_FOUND)
    if path_params or dependant.query_params or route.body_field is not None:
        kinds.add(ErrorKind.INVALID)
    if route.body_field is not None:
        kinds |= {ErrorKind.MALFORMED, ErrorKind.TOO_LARGE}
    if sheds(route):
        kinds.add(ErrorKind.UNAVAILABLE)
    return kinds


def sheds(route: APIRoute) -> bool:
    """Whether admission control may refuse the route (every lane but the stage's)."""
    path = route.path.replace("{", "x").replace("}", "")
    lanes = {classify(method, path) for method in route.methods or ()}
    return any(lane is not None and lane is not Lane.STAGE for lane in lanes)


_SHEDDING = "Also when the node is shedding load (`overloaded`)."


def document_errors(router: APIRouter) -> APIRouter:
    """Adds to the ``responses`` of every route of ``router`` the errors its shape
    implies; call it before the router is included."""
    for route in router.routes:
        if isinstance(route, APIRoute) and route.include_in_schema:
            for kind in sorted(derived(route), key=_ORDER.__getitem__):
                shed = kind is ErrorKind.UNAVAILABLE and sheds(route)
                _add(route.responses, kind, _SHEDDING if shed else None)
            if optional_auth(route):
                # The bearer token may be left out: FastAPI's extra is merged into the
                # operation, lists appended, so this makes `[{"HTTPBearer": []}, {}]`.
                route.openapi_extra = {**(route.openapi_extra or {}), "security": [{}]}
    return router


def optional_auth(route: APIRoute) -> bool:
    calls = set(_calls(route.dependant))
    return deps.optional_account in calls and not calls & {deps.account, deps.listener}


# -- the generated document ------------------------------------------------------------
def _error_schemas() -> dict[str, Any]:
    schema = ErrorOut.model_json_schema(ref_template="#/components/schemas/{model}")
    defs = schema.pop("$defs", {})
    return {"ErrorOut": schema, **defs}


def _bounds(min_password_len: int, max_title_len: int) -> dict[tuple[str, str], dict[str, Any]]:
    """Bounds that are settings: the node's values, not the models' loose ones."""
    password = {
        "minLength": min_password_len,
        "description": f"{min_password_len} to {MAX_PASSWORD_LEN} characters "
        "(the minimum is the setting `min_password_len`, 8 by default).",
    }
    title = {
        "maxLength": max_title_len,
        "description": f"1 to {max_title_len} characters, not blank, counted "
        "after stripping spaces at both ends (the maximum is the setting `max_title_len`, "
        "120 by default).",
    }
    return {
        ("NewAccount", "password"): password,
        ("NewSpace", "title"): title,
        ("NewClip", "title"): title,
        ("SpaceEditIn", "title"): title,
    }


def install(app: FastAPI, *, min_password_len: int, max_title_len: int) -> None:
    """Generates the document with the error body schema and the node's own bounds."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            doc = FastAPI.openapi(app)  # generates and keeps it in app.openapi_schema
            schemas = doc.setdefault("components", {}).setdefault("schemas", {})
            schemas.update(_error_schemas())
            for (model, field), patch in _bounds(min_password_len, max_title_len).items():
                prop = schemas[model]["properties"][field]
                for branch in prop.get("anyOf", []):  # optional: bound the string branch
                    if branch.get("type") == "string":
                        branch.update({k: v for k, v in patch.items() if k != "description"})
                if "anyOf" in prop:
                    prop["description"] = patch["description"]
                else:
                    prop.update(patch)
        return app.openapi_schema or {}

    app.openapi = openapi  # type: ignore[method-assign]
