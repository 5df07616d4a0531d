"""Run commands in-process, no sockets: a Dispatcher over a real Store, Blocking and KeyEvents.

The same parts node.py composes, minus the server: replies come back as the
bytes the connection would send, pub/sub deliveries land in the receiving
session's output, and blocked commands wait in the real Blocking registry.
"""
from __future__ import annotations

import hiredis

from mesh.slotmap import Member, SlotMap

from hypercache import commands
from hypercache.blocking import Blocking, Suspend
from hypercache.config import Config, Settings
from hypercache.context import Context
from hypercache.dispatch import Dispatcher
from hypercache.keyevents import KeyEvents
from hypercache.pubsub import PubSub
from hypercache.reply import encode
from hypercache.session import Session
from hypercache.stats import ServerStats
from hypercache.store import EXPIRE_OVERHEAD, KEY_OVERHEAD, Store, value_size

NODE_ID = "0" * 40


class LoneCluster:
    """This node owning every slot: the cluster view a single node has."""

    def __init__(self) -> None:
        self.me = Member(NODE_ID, "127.0.0.1", 6379, 16379, 0)
        self.slotmap = SlotMap.single(self.me, 1)
        self.writes_until = float("inf")      # monotonic deadline of accepting_writes()

    def accepting_writes(self) -> bool:
        return True


class Harness:
    def __init__(self, now_ms: int = 1_700_000_000_000) -> None:
        commands.load_all()
        config = Config(port=6379, http_port=0)
        self.ctx = Context(config=config, settings=Settings.from_config(config), store=Store(),
                           stats=ServerStats(), cluster=LoneCluster(), node_id=NODE_ID,
                           blocking=Blocking(), now_ms=now_ms)
        self.ctx.key_events = KeyEvents(self.ctx.store, self.ctx.blocking)
        self.ctx.pubsub = PubSub(self._deliver)
        self.ctx.deliver = self._deliver
        self.dispatcher = Dispatcher(self.ctx)
        self.outputs: dict[int, list[bytes]] = {}
        self.replies: dict[int, list] = {}      # replies of blocked commands, when they come
        self.next_id = 0

    def session(self, protocol: int = 2) -> Session:
        self.next_id += 1
        session = Session(id=self.next_id, protocol=protocol)
        self.ctx.clients[session.id] = session
        self.outputs[session.id] = []
        return session

    def _deliver(self, session: Session, value) -> None:
        if session.id in self.outputs:
            encode(value, session.protocol, self.outputs[session.id])

    def raw(self, session: Session, *args) -> bytes:
        """Run one command; the bytes the client would read (pushes included)."""
        out = self.outputs[session.id]
        requests = [[a if isinstance(a, bytes) else str(a).encode() for a in args]]
        stopped = self.dispatcher.run(session, requests, out)
        if stopped < len(requests):
            self._block(session, self.dispatcher.suspended)
        data = b"".join(out)
        out.clear()
        return data

    def call(self, session: Session, *args):
        """Run one command; its reply decoded (errors come back as hiredis.ReplyError)."""
        reader = hiredis.Reader()
        reader.feed(self.raw(session, *args))
        return reader.gets()

    def expected_memory(self) -> int:
        """used_memory recomputed from scratch: what the running accounting must equal."""
        store = self.ctx.store
        total = 0
        for keys in store.slots:
            for key, value in keys.items():
                total += len(key) + KEY_OVERHEAD + value_size(value)
        return total + EXPIRE_OVERHEAD * len(store.expires)

    def _block(self, session: Session, suspend: Suspend) -> None:
        def resume(reply, session=session):
            encode(reply, session.protocol, self.outputs[session.id])
        self.ctx.blocking.block(session, suspend, resume)
        self.ctx.key_events.refresh()

    def pending(self, session: Session) -> bytes:
        """Whatever reached `session` since its last command (pushes, a blocked reply)."""
        data = b"".join(self.outputs[session.id])
        self.outputs[session.id].clear()
        return data

    def time_out(self, session: Session) -> None:
        """The node's timer fired for `session`'s blocked command."""
        for waiters in list(self.ctx.blocking.by_key.values()):
            for waiter in list(waiters.values()):
                if waiter.session is session:
                    self.ctx.blocking.timeout(waiter)
                    self.ctx.key_events.refresh()
                    return

    def disconnect(self, session: Session) -> None:
        for waiters in list(self.ctx.blocking.by_key.values()):
            for waiter in list(waiters.values()):
                if waiter.session is session:
                    self.ctx.blocking.cancel(waiter)
        self.ctx.pubsub.forget(session)
        self.ctx.clients.pop(session.id, None)
        self.outputs.pop(session.id, None)
