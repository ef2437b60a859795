"""Holding labgrid places: reserve (waiting in line, with a timeout), acquire, reach the ports, release.

    from hil.lab import places
    with places.hold(profile, lab=inventory.lab, timeout=600) as held:   # reserve -> acquire
        programmers.flash(profile, image)      # resolve_connection() finds the held place's ports
    # released: also on an exception, on SIGTERM (the plugin), at interpreter exit

Order of calls (labgrid 26.0.1, lab-notes §3, §10):

1. A *lease* for this process's identity is created first (see below).
2. `reserve name=<place>`: a reservation puts us in the coordinator's queue, so waiters are served in
   order instead of racing acquires; it is polled every 0.25 s (polling also keeps it alive; unpolled, it
   expires after 60 s). While waiting, a place held by a dead harness run is taken back (below). After
   `timeout` seconds the reservation is cancelled and `PlaceBusy` names the holder.
3. `acquire`, then the reservation is cancelled at once. labgrid marks a reservation *acquired* and never
   expires it, so a run killed while holding one would block the place for everyone until someone cancels
   it by hand; cancelling it right after the acquire leaves only the lock, which the lease covers. It also
   gives the right order at the end for free: cancel before release (§10.3; the other order costs the next
   waiter up to 15 s, and a release without cancel blocks the place for 75 s).
4. Ports: the exporter starts ser2net on acquire; the place's `rom` and `console` ports are bridged to
   local ptys on first use (`hil.lab.bridge`), so spsdk's clients and the console reader open a device path.
5. `release` (labgrid's `release-from <us>`: a no-op if the place is no longer ours).

Leases: labgrid never releases the lock of a killed client (issue #1739, PR #1884 open). So each identity
keeps a lease: a reservation whose filter (`hil_lease=<nonce>`) no place can match, so it is never allocated
and just waits; a heartbeat thread polls it every `lease_seconds / 6`. The reservation's `timeout` field is
the coordinator's clock at the last poll plus 60 s, so any client sees when a holder last showed a sign
of life, in the coordinator's own clock (no skew between hosts). A place whose `hil-` holder has not
renewed its lease for `lease_seconds` (or has no lease at all: expired and removed) is taken back:
the dead holder's reservations are cancelled, then `release-from` it. A lock held by anyone else (a human's
`labgrid-client acquire`) is never touched; `PlaceBusy` names it.

Release on the way out, in this order of preference: the fixture's teardown (normal end, failure,
KeyboardInterrupt); `release_all()` from a SIGTERM/SIGHUP handler and `atexit` (the plugin installs
them), which use only thread-safe synchronous calls; and for SIGKILL or a lost host, the lease.

Locks are advisory on the network: ser2net listens on all interfaces and anyone who knows the port can
talk to the board (§10.7). The harness itself checks before every programmer open that the place is still
held by its own identity (`HeldPlace.connection`), so it never uses a place it does not hold.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from labgrid.remote.common import Reservation, ReservationState

from hil.lab.bridge import PtyBridge
from hil.lab.config import LabConfig
from hil.lab.labgrid import (
    CONSOLE_PORT,
    JLINK_SERVICE,
    ROM_PORT,
    LabClient,
    LabError,
    SerialEndpoint,
    is_harness_identity,
    make_identity,
)
from hil.programmers.base import Connection

if TYPE_CHECKING:
    from hil.boards.profile import BoardProfile

log = logging.getLogger(__name__)

LEASE_TAG = "hil_lease"
RESERVATION_LIFETIME = 60.0  # labgrid refreshes a polled reservation to "now + 60 s"
POLL_INTERVAL = 0.25
RECOVER_INTERVAL = 1.0
PORT_TIMEOUT = 15.0


class PlaceBusy(LabError):
    """The place stayed held or reserved by someone else for the whole wait."""

    def __init__(self, message: str, place: str, holder: str | None) -> None:
        super().__init__(message)
        self.place = place
        self.holder = holder


def last_seen(reservation: Reservation) -> float:
    """The coordinator's clock when the reservation was last polled (or created)."""
    return float(reservation.timeout) - RESERVATION_LIFETIME


def lease_alive(reservations: Iterable[Reservation], owner: str, now: float, lease_seconds: float) -> bool:
    """Whether `owner` renewed a lease within `lease_seconds` of the coordinator time `now`."""
    for res in reservations:
        if res.owner != owner or LEASE_TAG not in res.filters.get("main", {}):
            continue
        if res.state is ReservationState.waiting and now - last_seen(res) <= lease_seconds:
            return True
    return False


class Lease:
    """This identity's sign of life: a never-allocated reservation, polled by a heartbeat thread."""

    def __init__(self, client: LabClient, seconds: float) -> None:
        self.client = client
        self.seconds = seconds
        self.interval = max(seconds / 6, 0.1)
        self.token: str | None = None
        self.renewals = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> Lease:
        self.token = self.client.create_reservation({LEASE_TAG: secrets.token_hex(4)})
        self._thread = threading.Thread(target=self._beat, name="hil-lab-lease", daemon=True)
        self._thread.start()
        return self

    def renew(self) -> float:
        """Poll the lease now; the coordinator's current time. A lapsed lease is replaced."""
        token = self.token
        res = self.client.poll_reservation(token, timeout=10) if token else None
        if res is None or res.state is not ReservationState.waiting:
            log.warning("lab %s: lease of %s had lapsed; renewing it", self.client.coordinator,
                        self.client.identity)  # fmt: skip
            self.token = self.client.create_reservation({LEASE_TAG: secrets.token_hex(4)})
            res = self.client.poll_reservation(self.token, timeout=10)
            if res is None:
                raise LabError(f"lab {self.client.coordinator}: cannot keep a lease")
        self.renewals += 1
        return last_seen(res)

    def _beat(self) -> None:
        while not self._stop.wait(self.interval):
            token = self.token
            if token is None:
                return
            try:
                # A generous call timeout: a busy coordinator is slow, not gone, and a poll that reaches
                # it late still renews the lease.
                self.client.poll_reservation(token, timeout=max(self.seconds / 2, 2.0))
                self.renewals += 1
            except LabError as exc:  # the coordinator is away: keep trying, the lease decides
                log.warning("%s", exc)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(2)
        token, self.token = self.token, None
        if token:
            with contextlib.suppress(LabError):
                self.client.cancel_reservation(token, timeout=5)


@dataclass
class HeldPlace:
    """A place this process holds: its serial endpoints, bridged to local ptys on first use."""

    session: LabSession
    place: str
    endpoints: dict[str, SerialEndpoint]
    acquired_at: float
    waited: float
    recovered_from: list[str] = field(default_factory=list)
    bridges: dict[str, PtyBridge] = field(default_factory=dict)

    @property
    def identity(self) -> str:
        return self.session.identity

    def verify_held(self) -> None:
        """LabError unless the coordinator says this identity holds the place right now."""
        owner = self.session.client.place(self.place).acquired
        if owner != self.identity:
            raise LabError(
                f"lab {self.session.client.coordinator}: place {self.place} is no longer held by "
                f"{self.identity} (held by {owner or 'nobody'}); not using it"
            )

    def local_port(self, name: str) -> str:
        """A local pty for the place's serial port `name` (`rom`, `console`), bridged on first use."""
        bridge = self.bridges.get(name)
        if bridge is not None and bridge.alive:
            return bridge.port
        if bridge is not None:  # the remote end went away (exporter restarted): reconnect
            log.warning("place %s: %s bridge died (%s); reconnecting", self.place, name, bridge.error)
            bridge.stop()
        endpoint = self.endpoints.get(name)
        if endpoint is None and name == ROM_PORT and len(self.endpoints) == 1:
            endpoint = next(iter(self.endpoints.values()))  # a place with one unnamed serial port
        if endpoint is None:
            have = ", ".join(self.endpoints) or "none"
            raise LabError(f"place {self.place}: no serial port named {name!r} (its ports: {have})")
        bridge = PtyBridge(endpoint.url, name=f"place {self.place} {name}").start()
        self.bridges[name] = bridge
        return bridge.port

    def jlink_ip(self) -> str | None:
        client = self.session.client
        found = client.network_service(client.place(self.place, fresh=False), JLINK_SERVICE)
        return f"{found[0]}:{found[1]}" if found else None

    def connection(self, profile: BoardProfile) -> Connection:
        """The board's programming connection through this place (checked to be still ours)."""
        self.verify_held()
        base = profile.connection
        programmer_is_jlink = profile.programmer == "jlink"
        return Connection(
            port=None if programmer_is_jlink else self.local_port(ROM_PORT),
            baudrate=base.baudrate,
            timeout_ms=base.timeout_ms,
            jlink_serial=base.jlink_serial,
            jlink_ip=(base.jlink_ip or self.jlink_ip()) if programmer_is_jlink else base.jlink_ip,
            emulated=profile.emulated,
        )

    def console_port(self) -> str:
        self.verify_held()
        return self.local_port(CONSOLE_PORT)

    def close_bridges(self) -> None:
        for bridge in self.bridges.values():
            bridge.stop()
        self.bridges.clear()

    def release(self) -> None:
        self.session.release(self.place)


class LabSession:
    """This process's use of one lab: a client under one identity, its lease, and the places it holds."""

    def __init__(self, config: LabConfig, identity: str | None = None) -> None:
        self.config = config
        self.identity = identity or make_identity()
        self.client = LabClient(config.coordinator_address(), self.identity)
        self.lease: Lease | None = None
        self.held: dict[str, HeldPlace] = {}
        self._lock = threading.RLock()

    def connect(self) -> LabSession:
        if self.lease is None:
            self.client.connect()
            self.lease = Lease(self.client, self.config.lease_seconds).start()
        return self

    # -- stale locks -------------------------------------------------------------------------------------
    def recover_stale(self, place: str) -> str | None:
        """Take `place` back if a harness run that died holds it; the dead owner, or None."""
        owner = self.client.place(place).acquired
        if not owner or owner == self.identity or not is_harness_identity(owner):
            return None
        assert self.lease is not None
        now = self.lease.renew()
        reservations = self.client.reservations()
        if lease_alive(reservations.values(), owner, now, self.config.lease_seconds):
            return None
        for token, res in reservations.items():  # cancel first, then release (lab-notes §10.3)
            if res.owner == owner:
                self.client.cancel_reservation(token)
        self.client.release(place, fromuser=owner)
        log.warning(
            "lab %s: took place %s back from %s (no lease renewal for %g s: that run is gone)",
            self.client.coordinator, place, owner, self.config.lease_seconds,
        )  # fmt: skip
        return owner

    def describe_holder(self, place: str) -> tuple[str | None, str]:
        """(owner, a phrase saying who holds or has reserved the place) for messages."""
        p = self.client.place(place)
        if p.acquired:
            since = time.strftime("%H:%M:%S", time.localtime(p.changed))
            kind = "a harness run" if is_harness_identity(p.acquired) else "a labgrid user, not a harness run"
            return p.acquired, f"held by {p.acquired} ({kind}) since {since}"
        if p.reservation:
            res = self.client.reservations().get(p.reservation)
            who = res.owner if res else "another client"
            return who, f"reserved for {who}"
        return None, "queued behind other reservations"

    # -- hold / release ----------------------------------------------------------------------------------
    def hold(
        self,
        place: str,
        *,
        timeout: float,
        on_wait: Callable[[str], None] | None = None,
        port_timeout: float = PORT_TIMEOUT,
    ) -> HeldPlace:
        """Reserve and acquire `place`, waiting up to `timeout` s; PlaceBusy if it stayed taken."""
        with self._lock:
            if place in self.held:
                return self.held[place]
            self.connect()
            self.client.place(place)  # a LabError naming the known places if it does not exist
            start = time.monotonic()
            recovered: list[str] = []
            token = self.client.create_reservation({"name": place})
            try:
                last_recover = 0.0
                told = False
                while True:
                    res = self.client.poll_reservation(token)
                    if res is None or res.state in (ReservationState.expired, ReservationState.invalid):
                        token = self.client.create_reservation({"name": place})
                        continue
                    if res.state is ReservationState.allocated:
                        break
                    now = time.monotonic()
                    if now - last_recover >= RECOVER_INTERVAL:
                        last_recover = now
                        owner = self.recover_stale(place)
                        if owner:
                            recovered.append(owner)
                            continue
                    waited = now - start
                    if not told and on_wait is not None:
                        told = True
                        on_wait(self.describe_holder(place)[1])
                    if waited >= timeout:
                        holder, phrase = self.describe_holder(place)
                        raise PlaceBusy(
                            f"lab {self.client.coordinator}: place {place} is busy: {phrase}; waited "
                            f"{waited:.1f} s (--hil-lock-timeout {timeout:g})", place, holder,
                        )  # fmt: skip
                    self.client.pump(POLL_INTERVAL)
                self.client.acquire(place)
            except BaseException:
                with contextlib.suppress(LabError):
                    self.client.cancel_reservation(token)
                raise
            self.client.cancel_reservation(token)  # step 3 of the module docstring
            try:
                endpoints = self.client.wait_serial_ports(place, timeout=port_timeout)
            except BaseException:
                with contextlib.suppress(LabError):
                    self.client.release(place)
                raise
            held = HeldPlace(self, place, endpoints, time.time(), time.monotonic() - start, recovered)
            self.held[place] = held
            _register(held)
            return held

    def release(self, place: str) -> None:
        """Stop the place's bridges and release it (no-op if not held); reservations are already gone."""
        with self._lock:
            held = self.held.pop(place, None)
            if held is None:
                return
            _unregister(held)
            held.close_bridges()
            self.client.release(place)

    def release_all(self) -> None:
        """Release every held place with thread-safe calls only (signal handlers, atexit)."""
        for place in list(self.held):
            held = self.held.pop(place, None)
            if held is None:
                continue
            _unregister(held)
            held.close_bridges()
            with contextlib.suppress(LabError):
                self.client.release(place, timeout=5)

    def close(self) -> None:
        """Release everything, end the lease, close the connection."""
        self.release_all()
        if self.lease is not None:
            self.lease.stop()
            self.lease = None
        self.client.close()


# -- the process's held places, for resolve_connection / console_port and the exit paths ------------------
_HELD: dict[str, HeldPlace] = {}
_SESSIONS: list[LabSession] = []
_registry_lock = threading.Lock()


def _register(held: HeldPlace) -> None:
    with _registry_lock:
        _HELD[held.place] = held
        if held.session not in _SESSIONS:
            _SESSIONS.append(held.session)


def _unregister(held: HeldPlace) -> None:
    with _registry_lock:
        if _HELD.get(held.place) is held:
            del _HELD[held.place]


def held_place(profile: BoardProfile) -> HeldPlace:
    """The held place of a lab board, or a LabError saying how to hold it."""
    place = profile.labgrid_place
    held = _HELD.get(place) if place else None
    if held is None:
        raise LabError(
            f"board {profile.name}: a lab board (labgrid place {place}); this process does not hold the "
            "place. Run the tests with --hil-target lab (the plugin reserves and acquires it), or use "
            "hil.lab.places.hold(profile, lab=...)"
        )
    return held


def lab_connection(profile: BoardProfile) -> Connection:
    """`hil.programmers.resolve_connection` for a lab board: the held place's ports."""
    return held_place(profile).connection(profile)


def lab_console_port(profile: BoardProfile) -> str:
    """`hil.console.console_port` for a lab board: the held place's console, bridged to a local pty."""
    return held_place(profile).console_port()


def health_check(profile: BoardProfile, *, retries: int = 1) -> str | None:
    """None if the board's ROM answers its programmer's handshake through the held place, else why not.

    Opening the programmer is the check: it runs the real client's own handshake (DK6 ISP unlock, mboot
    ping, SDP status, J-Link connect) over the same bridge the tests will use.
    """
    from hil import programmers
    from hil.errors import HilError

    try:
        programmer = programmers.open_programmer(profile, retries=retries)
    except HilError as exc:
        return str(exc)
    programmer.close()
    return None


def release_all() -> None:
    """Release every place this process holds, in every session (SIGTERM handler, atexit)."""
    with _registry_lock:
        sessions = list(_SESSIONS)
    for session in sessions:
        session.release_all()


atexit.register(release_all)


@contextlib.contextmanager
def hold(
    profile: BoardProfile,
    *,
    lab: LabConfig,
    timeout: float,
    identity: str | None = None,
    on_wait: Callable[[str], None] | None = None,
) -> Iterator[HeldPlace]:
    """Hold a lab board's place for the block (its own session, closed at the end)."""
    if not profile.labgrid_place:
        raise LabError(f"board {profile.name}: not a lab board (no labgrid_place in boards.toml)")
    session = LabSession(lab, identity)
    try:
        yield session.hold(profile.labgrid_place, timeout=timeout, on_wait=on_wait)
    finally:
        session.close()
