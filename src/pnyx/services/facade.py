"""What the API layer may use of a node: its services, and nothing beneath them.

``api/deps.py`` hands route handlers a :class:`Services`, never the ``Node``: there is no
store, live state or settings here to reach into, so a handler parses, authorises, calls
one service method and serialises (docs/conventions.md, rule 8).
tests/unit/api/test_api_seams.py checks the API's source for reaches all the same.

The settings the API itself needs are in :class:`ApiSettings`, a frozen copy of just
those values: a route reads an attribute, not the node's whole configuration (secrets
included), and nothing can change it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pnyx.config import Settings
from pnyx.services.access import SpaceAccess
from pnyx.services.accounts import AccountService
from pnyx.services.admission import Admission
from pnyx.services.analytics import Analytics
from pnyx.services.audience import Audience
from pnyx.services.auth import Tokens
from pnyx.services.captions import TranscriptService
from pnyx.services.client_address import ClientAddresses
from pnyx.services.clips import ClipService
from pnyx.services.directory import SpaceDirectory
from pnyx.services.health import HealthService
from pnyx.services.ice import IceServers
from pnyx.services.links import LinkSigner
from pnyx.services.listeners import ListenerService
from pnyx.services.media import MediaService
from pnyx.services.notifications import NotificationService
from pnyx.services.origin import Origin
from pnyx.services.profiles import ProfileService
from pnyx.services.push import PushService
from pnyx.services.ratelimits import RateLimits
from pnyx.services.relay import PublishRelay
from pnyx.services.replays import ReplayService
from pnyx.services.sessions import Sessions
from pnyx.services.stage import StageService
from pnyx.services.state import StateService
from pnyx.services.webhooks import Webhooks


@dataclass(frozen=True, slots=True)
class ApiSettings:
    space_cache_s: int  # max-age of the public space reads (GET /v1/spaces, /v1/spaces/{id})
    share_page_cache_s: int = 30  # max-age of the share pages (api/pages.py)
    share_base_url: str | None = None  # their og:url's base (None: no og:url)
    captions_default: bool = True  # a space created without saying is captioned
    replay_edge_ttl_s: int = 600  # s-maxage of replay objects (api/media.py)

    @classmethod
    def of(cls, settings: Settings) -> ApiSettings:
        return cls(
            space_cache_s=settings.space_cache_s,
            share_page_cache_s=settings.share_page_cache_s,
            share_base_url=settings.share_base_url,
            captions_default=settings.captions_default,
            replay_edge_ttl_s=settings.replay_edge_ttl_s,
        )


@dataclass(frozen=True, slots=True)
class Services:
    config: ApiSettings
    tokens: Tokens  # signed tokens (Sessions checks them against sign-outs)
    sessions: Sessions  # who is calling: tokens not signed out; signing out
    addresses: ClientAddresses  # the client's address (trusted proxies' X-Forwarded-For)
    limits: RateLimits  # rate limits in the live state: check(kind, key)
    accounts: AccountService
    directory: SpaceDirectory  # spaces as listed: create, get, listing, start, end
    profiles: ProfileService  # profile pages; the caller's account settings and deletion
    listeners: ListenerService  # join, heartbeat, leave, react
    audience: Audience  # the signed-in listeners a host can see
    analytics: Analytics  # a space's figures for its host
    access: SpaceAccess  # who may listen; a space's (signed) links; private invitations
    links: LinkSigner  # checks signed listener paths (api/signed.py)
    state: StateService  # the state document: read it, act on the stage
    stage: StageService  # the stage WebSocket
    media: MediaService  # publishing audio
    publishing: PublishRelay  # the publish routes: here, or relayed to the stage node
    ice: IceServers  # STUN/TURN servers for speakers (Link headers), TURN credentials
    origin: Origin  # live HLS and recorded objects
    transcripts: TranscriptService  # a space's captions, as its transcript
    replays: ReplayService  # replay playlists and downloads
    clips: ClipService  # clips of live and recorded spaces
    notifications: NotificationService  # the list, unread, read marks, "remind me"
    webhooks: Webhooks  # endpoints; emit(owner, event, data) for events of other parts
    push: PushService  # browser push subscriptions (and the VAPID public key)
    health: HealthService
    admission: Admission  # for the admission middleware
    clock: Callable[[], float]
