"""The order board's data: ``GET /board/orders`` (today's cards), ``GET /board/events``
(the cards of orders as they change, as Server-Sent Events) and ``GET /board/channels``
(the channels whose authorization is lost or expiring).

One tailer per app follows the change feed for every viewer: a task started when the first
viewer connects and stopped when the last one leaves, reading the feed every
:data:`TICK_S`, building each changed order's card once, and handing it to each viewer's
bounded queue. A viewer that falls behind is told to resync (refetch the cards).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, FastAPI, Header, HTTPException, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from waimai_bridge.action_rules import DEFAULT_ANSWERS, Answers, declared_answers
from waimai_bridge.bounds import MAX_INT64
from waimai_bridge.errors import failure_site
from waimai_bridge.models import Action, Capability
from waimai_bridge.plugins import PluginRegistry
from waimai_bridge.runtime import Bridge
from waimai_bridge.settings import Scope
from waimai_bridge.store import board, changes
from waimai_bridge.web.api import bridge_of, storable_parameters
from waimai_bridge.web.authorizations import board_alerts
from waimai_bridge.web.board_session import BoardSession, current_session

logger = logging.getLogger(__name__)

TICK_S = 0.5
"""How often the tailer reads the change feed."""
TICK_LIMIT = 500
"""The most changes one read of the feed takes."""
REPLAY_LIMIT = 500
"""The most changes a reconnecting viewer is replayed; further behind, it resyncs."""
QUEUE_SIZE = 256
"""The events a viewer may have waiting; one more and it resyncs."""
KEEP_ALIVE_S = 15.0
LATE_GRACE_S = 5.0
"""How long the tailer waits for a change whose id is below one it has read: it was taken
by a transaction that had not committed yet (or rolled back)."""
MAX_LATE = 1000
"""The most such ids the tailer waits for."""

router = APIRouter(prefix="/board", tags=["board"], include_in_schema=False)

StoreId = Annotated[str | None, Query(max_length=64)]


def zone_of(bridge: Bridge, store_id: str | None) -> ZoneInfo:
    """Where the board's day starts: the store's time zone, or the default for all."""
    store = bridge.config.stores.get(store_id) if store_id else None
    return ZoneInfo(store.timezone) if store else board.BOARD_TIME_ZONE


def board_rules(registry: PluginRegistry) -> board.Rules:
    """The actions each platform's plugin supports, and which request each answering action
    answers there (no action on a platform not loaded)."""

    def rules(platform: str) -> tuple[frozenset[Action], Answers]:
        try:
            plugin = registry.platform(platform)
        except LookupError:
            return frozenset(), DEFAULT_ANSWERS
        answers = declared_answers(plugin.manifest.answers)
        if not plugin.supports(Capability.OUTBOUND_ACTION):
            return frozenset(), answers
        return frozenset(plugin.manifest.actions), answers

    return rules


def board_reader(request: Request) -> BoardSession:
    """The board session of a request that reads the board: 401 without one, 403 when its
    token lacks the ``read`` scope."""
    session = current_session(request)
    if session is None:
        raise HTTPException(401, "log in to the board first (POST /board/login)")
    if Scope.READ not in session.scopes:
        raise HTTPException(403, "this token lacks the 'read' scope the board needs")
    return session


Reader = Annotated[BoardSession, Depends(board_reader)]


@router.get("/orders", dependencies=[Depends(storable_parameters)])
async def orders(
    request: Request, session: Reader, store_id: StoreId = None,
    platform: Annotated[str | None, Query(max_length=32)] = None,
    state: Annotated[str | None, Query(max_length=32)] = None,
) -> JSONResponse:  # fmt: skip
    """Today's cards (of one store, platform, state), newest first, and the change feed's
    newest id when they were read (where ``/board/events`` can resume)."""
    if state is not None and state not in board.STATES:
        raise HTTPException(400, f"state must be one of {', '.join(sorted(board.STATES))}")
    bridge = bridge_of(request)
    rules = board_rules(bridge.registry)

    def query() -> dict[str, Any]:
        with bridge.database.reading() as db:
            last_id = changes.last_id(db)  # first: the cards are at least this new
            cards = board.cards(
                db, rules, now_ms=bridge.clock(), store_id=store_id, platform=platform,
                state=state, zone=zone_of(bridge, store_id),
            )  # fmt: skip
        return {"cards": cards, "last_id": last_id}

    return JSONResponse(await run_in_threadpool(query))


@router.get("/channels")
async def channels(request: Request, session: Reader) -> JSONResponse:
    """The bound channels whose authorization is lost or expiring, for their badges."""
    bridge = bridge_of(request)

    def query() -> list[dict[str, Any]]:
        with bridge.database.reading() as db:
            return board_alerts(db, bridge.config, now_ms=bridge.clock())

    return JSONResponse({"authorizations": await run_in_threadpool(query)})


@dataclass(frozen=True)
class Pushed:
    """An order's card as it changed: the event a viewer of its store is sent."""

    id: int
    store_id: str
    data: str


class _Signal:
    def __init__(self, name: str) -> None:
        self.name = name


RESYNC = _Signal("resync")
CLOSED = _Signal("closed")
Item = Pushed | _Signal


class Viewer:
    """One connected board: its store (None: all) and the events waiting for it."""

    def __init__(self, store_id: str | None) -> None:
        self.store_id = store_id
        self.queue: asyncio.Queue[Item] = asyncio.Queue(QUEUE_SIZE)

    def offer(self, item: Item) -> None:
        """Queue ``item`` (when it is of the viewer's store); a full queue is dropped for a
        resync."""
        if isinstance(item, Pushed) and self.store_id not in (None, item.store_id):
            return
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            while not self.queue.empty():
                self.queue.get_nowait()
            self.queue.put_nowait(CLOSED if item is CLOSED else RESYNC)


class FeedPosition:
    """Where the tailer is in the change feed: the newest id read, and the ids below it not
    read yet (their transactions had not committed), waited for a while."""

    def __init__(self, last: int) -> None:
        self.last = last
        self.late: dict[int, float] = {}

    def after(self) -> int:
        """Where the next read starts."""
        return min(self.late) - 1 if self.late else self.last

    def take(self, rows: Sequence[changes.Noted], now_s: float) -> list[changes.Noted]:
        """The rows not read before."""
        fresh = []
        for row in rows:
            if row.id > self.last:
                for skipped in range(self.last + 1, min(row.id, self.last + 1 + MAX_LATE)):
                    if len(self.late) < MAX_LATE:
                        self.late[skipped] = now_s
                self.last = row.id
                fresh.append(row)
            elif self.late.pop(row.id, None) is not None:
                fresh.append(row)
        self.late = {id_: at for id_, at in self.late.items() if now_s - at < LATE_GRACE_S}
        return fresh


class BoardFeed:
    """The app's one tailer of the change feed, and its viewers."""

    def __init__(self, bridge: Bridge, *, tick_s: float = TICK_S) -> None:
        self.bridge = bridge
        self.tick_s = tick_s
        self.rules = board_rules(bridge.registry)
        self.viewers: set[Viewer] = set()
        self.ticks = 0
        self._task: asyncio.Task[None] | None = None

    @property
    def tailing(self) -> bool:
        """Whether the tailer runs."""
        return self._task is not None and not self._task.done()

    def join(self, store_id: str | None) -> Viewer:
        """A new viewer; the tailer starts with the first."""
        viewer = Viewer(store_id)
        self.viewers.add(viewer)
        if not self.tailing:
            self._task = asyncio.get_running_loop().create_task(self._tail())
        return viewer

    def leave(self, viewer: Viewer) -> None:
        """A viewer gone; the tailer stops with the last."""
        self.viewers.discard(viewer)
        if not self.viewers and self._task is not None:
            self._task.cancel()
            self._task = None

    async def close(self) -> None:
        """End every viewer's stream and the tailer."""
        for viewer in self.viewers:
            viewer.offer(CLOSED)
        self.viewers.clear()
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    def replay(self, after: int, store_id: str | None) -> tuple[list[Pushed], set[int]] | None:
        """The cards of what changed after ``after`` (of one store), with the ids of the
        changes they tell of; None when that is more than :data:`REPLAY_LIMIT` changes."""
        with self.bridge.database.reading() as db:
            rows = changes.since(db, after, store_id=store_id, limit=REPLAY_LIMIT + 1)
            if len(rows) > REPLAY_LIMIT:
                return None
            cards = board.cards_of(db, changes.changed_orders(rows), self.rules)
        return _pushed(rows, cards), {row.id for row in rows}

    async def _tail(self) -> None:
        position: FeedPosition | None = None
        failing = False
        while True:
            pushed: list[Pushed] = []
            more = False
            try:
                if position is None:
                    position = FeedPosition(await run_in_threadpool(self._newest))
                pushed, more = await run_in_threadpool(self._tick, position)
                failing = False
            except Exception as exc:  # the database is away: read again next tick
                if not failing:
                    logger.warning("the board's feed cannot be read: %s", failure_site(exc))
                failing = True
            self.ticks += 1
            for item in pushed:
                for viewer in list(self.viewers):
                    viewer.offer(item)
            if not more:
                await asyncio.sleep(self.tick_s)

    def _newest(self) -> int:
        with self.bridge.database.reading() as db:
            return changes.last_id(db)

    def _tick(self, position: FeedPosition) -> tuple[list[Pushed], bool]:
        """The cards of the changes not read yet, and whether more are waiting."""
        with self.bridge.database.reading() as db:
            rows = changes.since(db, position.after(), limit=TICK_LIMIT)
            fresh = position.take(rows, time.monotonic())
            cards = board.cards_of(db, changes.changed_orders(fresh), self.rules) if fresh else {}
        return _pushed(fresh, cards), bool(fresh) and len(rows) == TICK_LIMIT


def _pushed(rows: Sequence[changes.Noted], cards: dict[board.Key, board.Card]) -> list[Pushed]:
    """One event per changed order, with the id of its last change, in the order of those."""
    last = {(row.platform, row.platform_order_id): row for row in rows}
    found = []
    for key in changes.changed_orders(rows):
        card = cards.get(key)
        if card is not None:
            data = json.dumps(card, ensure_ascii=False, separators=(",", ":"))
            found.append(Pushed(last[key].id, last[key].store_id, data))
    return found


def feed_of(app: FastAPI) -> BoardFeed:
    """The app's feed, made with its first viewer."""
    feed: BoardFeed | None = getattr(app.state, "board_feed", None)
    if feed is None:
        feed = app.state.board_feed = BoardFeed(app.state.bridge)
    return feed


async def close(app: FastAPI) -> None:
    """Stop the app's feed (at shutdown)."""
    feed: BoardFeed | None = getattr(app.state, "board_feed", None)
    if feed is not None:
        await feed.close()


def _event(item: Pushed) -> str:
    return f"id: {item.id}\nevent: order\ndata: {item.data}\n\n"


_RESYNC_EVENT = "event: resync\ndata: {}\n\n"


@router.get("/events", dependencies=[Depends(storable_parameters)])
async def events(
    request: Request, session: Reader, store_id: StoreId = None,
    last_id: Annotated[int | None, Query(ge=0, le=MAX_INT64)] = None,
    last_event_id: Annotated[str | None, Header(max_length=20)] = None,
) -> StreamingResponse:  # fmt: skip
    """The cards of the orders (of one store) as they change; after ``Last-Event-ID`` (or
    ``last_id``), first what changed since."""
    after = last_id
    if last_event_id is not None and last_event_id.isascii() and last_event_id.isdigit():
        after = min(int(last_event_id), MAX_INT64)
    feed = feed_of(request.app)

    async def stream() -> AsyncIterator[str]:
        viewer = feed.join(store_id)  # before the replay: nothing falls between the two
        try:
            yield "retry: 2000\n\n"
            replayed: set[int] = set()
            if after is not None:
                replay = await run_in_threadpool(feed.replay, after, store_id)
                if replay is None:
                    yield _RESYNC_EVENT
                else:
                    missed, replayed = replay
                    for pushed in missed:
                        yield _event(pushed)
            while time.time() < session.expires_at_s:
                try:
                    item = await asyncio.wait_for(viewer.queue.get(), KEEP_ALIVE_S)
                except TimeoutError:
                    yield ": keep-alive\n\n"
                    continue
                if item is CLOSED:
                    return
                if item is RESYNC:
                    yield _RESYNC_EVENT
                elif isinstance(item, Pushed) and item.id not in replayed:
                    yield _event(item)
        finally:
            feed.leave(viewer)

    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(stream(), media_type="text/event-stream", headers=headers)
