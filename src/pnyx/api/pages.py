"""Share pages: the web client's index.html with server-rendered link-preview tags.

Link previews (chat apps, social sites) read OpenGraph and Twitter-card ``<meta>`` tags
and never run JavaScript, so the pages people share — a space (``/s/{id}``) and a
profile (``/u/{handle}``) — get their title, host, live or scheduled time, or name and
bio, put into the page by the server. :func:`page` is the one generic renderer (other
share pages reuse it); every value it writes is HTML-escaped, so a title like
``</title><script>`` stays text.

A private space (its ``p-`` id says so without a store read) gets the generic preview:
no title and no host. The pages are the same for everybody (no cookie or token changes
them), so they are ``public`` for ``share_page_cache_s``.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import HTMLResponse

from pnyx.api.deps import ServicesDep
from pnyx.domain.types import SpaceId, SpaceStatus, Visibility
from pnyx.errors import PnyxError
from pnyx.services.facade import Services
from pnyx.services.links import is_private

SITE = "Pnyx"
GENERIC = "Live audio spaces: listen, react, raise a hand and speak."
_TITLE = re.compile(r"<title>.*?</title>", re.S)
_DESCRIPTION = re.compile(r'<meta name="description" content="[^"]*">')
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
MAX_TITLE = 200
MAX_DESCRIPTION = 300


@dataclass(frozen=True, slots=True)
class Preview:
    title: str
    description: str
    path: str  # the page's path, for og:url (with the site's base)
    kind: str = "website"  # og:type: "website", "profile", "music.song"…
    extra: Mapping[str, str] | None = None  # more og:/twitter: properties


def _clean(text: str, most: int) -> str:
    text = _CONTROL.sub(" ", text).strip()
    return text if len(text) <= most else text[: most - 1].rstrip() + "…"


def page(template: str, preview: Preview, *, base_url: str | None = None) -> str:
    """``template`` (index.html) with ``preview``'s title, description and OpenGraph and
    Twitter-card tags, every value escaped. ``base_url``: the site's address for og:url
    (None: no og:url)."""
    title = _clean(preview.title, MAX_TITLE)
    description = _clean(preview.description, MAX_DESCRIPTION)
    props: list[tuple[str, str, str]] = [
        ("property", "og:site_name", SITE),
        ("property", "og:type", preview.kind),
        ("property", "og:title", title),
        ("property", "og:description", description),
        ("name", "twitter:card", "summary"),
        ("name", "twitter:title", title),
        ("name", "twitter:description", description),
    ]
    if base_url:
        props.append(("property", "og:url", base_url.rstrip("/") + preview.path))
    for key, value in (preview.extra or {}).items():
        attr = "name" if key.startswith("twitter:") else "property"
        props.append((attr, key, _clean(value, MAX_DESCRIPTION)))
    tags = "\n".join(
        f'  <meta {attr}="{html.escape(key)}" content="{html.escape(value)}">'
        for attr, key, value in props
    )
    out = _TITLE.sub(lambda _: f"<title>{html.escape(title)}</title>", template, count=1)
    out = _DESCRIPTION.sub(
        lambda _: f'<meta name="description" content="{html.escape(description)}">',
        out,
        count=1,
    )
    return out.replace("</head>", f"{tags}\n</head>", 1)


def _when(at: datetime | None) -> str:
    return at.strftime("%a %d %b %Y, %H:%M UTC") if at is not None else "soon"


async def space_preview(services: Services, space_id: str) -> Preview:
    path = f"/s/{space_id}"
    generic = Preview(f"A space on {SITE}", GENERIC, path)
    if is_private(space_id):
        return Preview(f"A private space on {SITE}", "Invited listeners only.", path)
    try:
        space = await services.directory.get(SpaceId(space_id))
    except PnyxError:
        return generic
    if space.visibility is Visibility.PRIVATE:
        return generic
    host = await _name(services, space.host)
    if space.status is SpaceStatus.LIVE:
        what = f"Live now · {space.listeners} listening"
    elif space.status is SpaceStatus.SCHEDULED:
        what = f"Scheduled for {_when(space.scheduled_start)}"
    elif space.status is SpaceStatus.ENDED:
        replay = space.record and not space.recording_deleted
        what = "Ended · replay available" if replay else "Ended"
    else:
        what = "Cancelled"
    return Preview(f"{space.title} · {SITE}", f"{what}. Hosted by {host}.", path)


async def profile_preview(services: Services, handle: str) -> Preview:
    path = f"/u/{handle}"
    try:
        p = await services.profiles.profile(handle, None)
    except PnyxError:
        return Preview(f"A profile on {SITE}", GENERIC, path)
    followers = f"{p.followers} follower{'s' if p.followers != 1 else ''}"
    about = p.bio or f"Hosts and speaks in live audio spaces on {SITE}."
    return Preview(
        f"{p.display_name} (@{p.handle}) · {SITE}",
        f"{about} · {followers}",
        f"/u/{p.handle}",
        kind="profile",
        extra={"profile:username": p.handle},
    )


async def clip_preview(services: Services, clip_id: str, base_url: str | None) -> Preview:
    """A clip's preview; a private space's clip (or an unknown one) previews as plain
    Pnyx. ``og:audio`` needs an absolute URL: only with ``base_url``."""
    path = f"/c/{clip_id}"
    try:
        clip = await services.clips.get(clip_id, None)
    except PnyxError:
        return Preview(f"A clip on {SITE}", GENERIC, path)
    host = await _name(services, clip.host)
    extra = {}
    if base_url:
        extra = {
            "og:audio": f"{base_url.rstrip('/')}/v1/clips/{clip.id}/clip.m4a",
            "og:audio:type": "audio/mp4",
        }
    return Preview(
        f"{clip.title} (clip) · {SITE}",
        f"A {clip.duration:.0f} s clip from {host}'s space.",
        path,
        kind="music.song",
        extra=extra,
    )


async def _name(services: Services, handle: str) -> str:
    try:
        p = await services.profiles.profile(handle, None)
    except PnyxError:
        return f"@{handle}"
    return f"{p.display_name} (@{p.handle})" if p.display_name != p.handle else f"@{handle}"


def install(app: FastAPI, index_html: Path) -> None:
    """Serve ``/s/{space_id}``, ``/u/{handle}`` and ``/c/{clip_id}`` as index.html with
    their previews."""

    template = index_html.read_text(encoding="utf-8")

    def respond(services: Services, preview: Preview) -> HTMLResponse:
        text = page(
            template,
            preview,
            base_url=services.config.share_base_url,
        )
        cache = f"public, max-age={services.config.share_page_cache_s}"
        return HTMLResponse(text, headers={"Cache-Control": cache})

    async def space_page(space_id: str, services: ServicesDep) -> HTMLResponse:
        return respond(services, await space_preview(services, space_id))

    async def profile_page(handle: str, services: ServicesDep) -> HTMLResponse:
        return respond(services, await profile_preview(services, handle))

    async def clip_page(clip_id: str, services: ServicesDep) -> HTMLResponse:
        base = services.config.share_base_url
        return respond(services, await clip_preview(services, clip_id, base))

    for path, endpoint in (
        ("/s/{space_id}", space_page),
        ("/u/{handle}", profile_page),
        ("/c/{clip_id}", clip_page),
    ):
        app.add_api_route(path, endpoint, methods=["GET", "HEAD"], include_in_schema=False)
