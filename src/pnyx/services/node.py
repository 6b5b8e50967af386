"""A Pnyx node: opens the store and live state, wires the services, owns the background
tasks (docs/conventions.md, rule 9), and closes everything on the way out.

The API gets ``Node.services`` (services/facade.py), never the node itself."""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from pnyx.config import NodeRole, Settings, link_secret, signing_secret
from pnyx.domain.codec import room_from_json
from pnyx.domain.types import Handle, Limits
from pnyx.live.base import LiveState
from pnyx.live.factory import open_live_state
from pnyx.services import admission as admission_
from pnyx.services.access import SpaceAccess
from pnyx.services.accounts import AccountService
from pnyx.services.analytics import Analytics
from pnyx.services.audience import Audience
from pnyx.services.auth import Passwords, Tokens
from pnyx.services.captions import CaptionService, TranscriptService
from pnyx.services.client_address import ClientAddresses
from pnyx.services.clips import ClipService
from pnyx.services.directory import SpaceDirectory
from pnyx.services.facade import ApiSettings, Services
from pnyx.services.health import HealthService
from pnyx.services.ice import IceServers
from pnyx.services.links import LinkSigner
from pnyx.services.listeners import ListenerService
from pnyx.services.media import MediaService
from pnyx.services.notifications import NotificationService
from pnyx.services.origin import Origin
from pnyx.services.password_policy import PasswordPolicy
from pnyx.services.presence import PresenceBatcher
from pnyx.services.profiles import ProfileService
from pnyx.services.push import PushService
from pnyx.services.push_fanout import BigHostPush
from pnyx.services.ratelimits import RateLimits, limits_of
from pnyx.services.recorder import Recorder
from pnyx.services.relay import PublishRelay
from pnyx.services.replays import ReplayService
from pnyx.services.sessions import Sessions
from pnyx.services.spaces import HostLimits, SpaceService, media_blob_ttl_s
from pnyx.services.stage import StageService
from pnyx.services.state import StateService
from pnyx.services.ticker import SpaceTicker
from pnyx.services.webhook_courier import WebhookCourier
from pnyx.services.webhooks import Webhooks
from pnyx.store.db import Store
from pnyx.store.records import ClipRecord, SpaceRecord

log = logging.getLogger(__name__)


@dataclass
class Node:
    settings: Settings
    node_id: str
    store: Store
    live: LiveState
    tokens: Tokens
    sessions: Sessions
    limits: RateLimits
    accounts: AccountService
    spaces: SpaceService
    listeners: ListenerService
    stage: StageService
    origin: Origin
    media: MediaService
    ticker: SpaceTicker
    notifications: NotificationService
    presence: PresenceBatcher
    admission: admission_.Admission
    relay: PublishRelay  # its HTTP client to the other nodes: closed by close()
    recorder: Recorder  # writes recordings to the store; flushed by close()
    access: SpaceAccess  # who may listen to a space; private spaces' signed links
    webhooks: Webhooks  # hosts' endpoints; events into the outbox
    courier: WebhookCourier  # sends the outbox; closed by close()
    push: PushService  # browser push: subscriptions, and the sending task
    big_push: BigHostPush  # push to the followers of hosts above fanout_threshold
    audience: Audience  # the signed-in listeners a host sees; who stops counting
    analytics: Analytics  # a space's figures: kept by the ticker, read by the host
    clock: Callable[[], float] = field(default=time.time)
    services: Services = field(init=False)  # what the API may use

    def __post_init__(self) -> None:
        replays = ReplayService(
            self.settings,
            self.spaces,
            self.store.recordings,
            self.recorder,
            self.live,
            self.clock,
        )
        replays.on_deleted = self.webhooks.recording_deleted
        directory = SpaceDirectory(
            self.spaces,
            self.live,
            self.notifications,
            self.access.signer,
            audience_candidates=self.settings.live_audience_candidates,
            clip_lengths=(self.settings.clip_default_s, self.settings.clip_max_s),
        )
        self.services = Services(
            config=ApiSettings.of(self.settings),
            tokens=self.tokens,
            sessions=self.sessions,
            addresses=ClientAddresses(self.settings.trusted_proxies),
            limits=self.limits,
            accounts=self.accounts,
            directory=directory,
            profiles=ProfileService(
                self.store,
                self.accounts.passwords,
                self.tokens,
                self.sessions,
                policy=self.accounts.policy,
                limits=self.limits,
                spaces=self.spaces,
                directory=directory,
            ),
            listeners=self.listeners,
            audience=self.audience,
            analytics=self.analytics,
            access=self.access,
            links=self.access.signer,
            state=StateService(self.spaces, self.listeners, self.access),
            stage=self.stage,
            media=self.media,
            publishing=self.relay,
            ice=IceServers(self.settings, self.clock),
            origin=self.origin,
            transcripts=TranscriptService(self.store, self.live),
            replays=replays,
            clips=self._clips(replays),
            notifications=self.notifications,
            webhooks=self.webhooks,
            push=self.push,
            health=HealthService(self.node_id, {"store": self.store.ping, "live": self.live.ping}),
            admission=self.admission,
            clock=self.clock,
        )

    def _clips(self, replays: ReplayService) -> ClipService:
        clips = ClipService(
            self.settings,
            self.spaces,
            self.access,
            replays,
            self.store.clips,
            self.live,
            self.limits,
            self.clock,
        )

        async def announce(clip: ClipRecord) -> None:  # webhooks' clip.created
            await self.webhooks.clip_made(await self.spaces.record(clip.space), clip)

        clips.on_clip_created = announce
        return clips

    @classmethod
    async def open(cls, settings: Settings, clock: Callable[[], float] = time.time) -> Node:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        node_id = settings.node_id or f"node-{secrets.token_hex(4)}"
        store = await Store.open(settings.database_url)
        await store.create_schema()
        live = open_live_state(
            settings.redis,
            presence_bucket_s=settings.presence_bucket_s,
            subscriber_queue=settings.ws_queue_depth,
        )
        tokens = Tokens(
            signing_secret(settings),
            account_ttl_s=settings.token_ttl_s,
            listener_ttl_s=settings.listener_token_ttl_s,
        )
        sessions = Sessions(
            live,
            tokens,
            check_s=settings.session_check_s,
            max_entries=settings.session_cache_entries,
            clock=clock,
        )
        rate_limits = RateLimits(live, limits_of(settings), clock)
        passwords = Passwords(concurrency=settings.argon2_concurrency, queue=settings.argon2_queue)
        limits = Limits(
            max_cohosts=settings.max_cohosts,
            max_speakers=settings.max_speakers,
            host_grace_s=settings.host_grace_s,
            max_title_len=settings.max_title_len,
        )
        hosts = HostLimits(
            live=settings.max_live_spaces_per_account,
            scheduled=settings.max_scheduled_spaces_per_account,
            per_hour=settings.space_creations_per_hour,
            burst=settings.space_creation_burst,
        )
        spaces = SpaceService(
            store,
            live,
            limits,
            clock,
            hosts,
            ended_retention_s=settings.ended_live_retention_s,
            media_ttl_s=media_blob_ttl_s(settings),
        )
        signer = LinkSigner(
            link_secret(settings),
            ttl_s=settings.link_ttl_s,
            step_s=settings.link_step_s,
            clock=clock,
        )
        access = SpaceAccess(
            store, spaces, signer, clock, frontrow=bool(settings.frontrow_publish_urls)
        )
        notifications = NotificationService(settings, store, clock)
        spaces.on_live = notifications.space_started
        spaces.on_speak_invite = notifications.speak_invite
        push = PushService(settings, store, clock)
        notifications.on_delivered = push.deliver
        big_push = BigHostPush(settings, store, push)
        notifications.on_big_host = big_push.enqueue

        async def check_access(rec: SpaceRecord, handle: Handle) -> None:
            await access.check(rec, room_from_json(rec.room), handle)

        notifications.check_access = check_access
        admission = admission_.from_settings(settings)

        def presence_window(now: float) -> float:  # as the ticker counts (services/ticker.py)
            return admission.presence_window_s(now, settings.presence_window_s)

        audience = Audience(live, spaces, clock, settings.audience_list_cap, presence_window)
        spaces.off_audience = audience.drop_handle
        analytics = Analytics(settings, live, store.analytics, spaces, clock, limits=rate_limits)
        recorder = Recorder(settings, store.recordings, clock)
        webhooks = Webhooks(settings, store, rate_limits, clock)
        courier = WebhookCourier(settings, store.webhooks, clock)
        webhooks.on_queued = courier.wake
        spaces.outbox_for = webhooks.space_messages
        spaces.on_queued = courier.wake
        recorder.on_finished = webhooks.recording_ready
        origin = Origin(settings, live)
        captions = CaptionService(settings, store, admission, clock)
        media = MediaService(
            settings, live, spaces, origin, recorder, node_id, clock, captions=captions
        )
        presence = PresenceBatcher(live, clock, flush_s=settings.presence_flush_s)
        presence.start()
        node = cls(
            settings=settings,
            node_id=node_id,
            store=store,
            live=live,
            tokens=tokens,
            sessions=sessions,
            limits=rate_limits,
            accounts=AccountService(
                store,
                passwords,
                tokens,
                policy=PasswordPolicy(
                    min_len=settings.min_password_len, min_score=settings.password_min_score
                ),
                limits=rate_limits,
            ),
            spaces=spaces,
            listeners=ListenerService(
                settings,
                store,
                live,
                spaces,
                tokens,
                clock,
                admission=admission,
                presence=presence,
                access=access,
                audience=audience,
            ),
            stage=StageService(settings, live, spaces, sessions),
            origin=origin,
            media=media,
            notifications=notifications,
            ticker=SpaceTicker(
                settings,
                live,
                spaces,
                node_id,
                clock,
                media=media,
                admission=admission,
                analytics=analytics,
            ),
            admission=admission,
            presence=presence,
            relay=PublishRelay(settings, media),
            recorder=recorder,
            access=access,
            webhooks=webhooks,
            courier=courier,
            push=push,
            big_push=big_push,
            audience=audience,
            analytics=analytics,
            clock=clock,
        )
        courier.start()
        push.start()
        big_push.start()
        notifications.start(reminders=settings.role in (NodeRole.STAGE, NodeRole.BOTH))
        if settings.role in (NodeRole.STAGE, NodeRole.BOTH):
            node.ticker.start()
        log.info(
            "node %s up: role=%s store=%s live=%s",
            node_id,
            settings.role.value,
            settings.database_url.split("://", 1)[0],
            "redis" if settings.redis else "memory",
        )
        return node

    async def close(self) -> None:
        await self.stage.close()
        await self.relay.close()
        await self.ticker.stop()
        await self.media.close()
        await self.recorder.close()  # after the media: their last segments are queued
        await self.notifications.close()
        await self.big_push.close()
        await self.push.close()
        await self.courier.close()  # after everything that emits events
        await self.presence.stop()
        await self.live.close()
        await self.store.close()
        log.info("node %s down", self.node_id)
