"""labgrid's client API, wrapped for the harness: one coordinator session under one lock identity.

Why wrap it: labgrid 26.0.1's `ClientSession` is the command line's engine. It takes the lock identity from
the environment (LG_HOSTNAME / LG_USERNAME, read at connect time), raises gRPC errors or its own
`UserError`, and keeps places and resources up to date only while its asyncio loop runs. `LabClient`
gives each session an explicit identity (no process-wide environment: one identity per xdist worker and per
run, lab-notes §10.2), turns every failure into one `LabError` line that names the coordinator and the
place, and runs the loop when fresh data is needed.

Two channels to the coordinator:

* the session (`labgrid.remote.client.ClientSession`): streams place and resource updates and owns the lock
  identity; acquiring a place and creating a reservation must go through it, because the coordinator
  takes the owner from the calling connection's session;
* a plain synchronous gRPC stub: for the calls that need no session (poll or cancel a reservation, release a
  place, list reservations). It is thread-safe and needs no event loop, so the lease heartbeat thread and an
  emergency release from a signal handler or `atexit` can use it while the main thread is anywhere.

Identities are `host/hil-<run>-<worker>`: the `hil-` prefix marks a holder this harness may take a place
back from once its lease has lapsed (`hil.lab.places`); a human's `labgrid-client` lock is never touched.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import grpc
from labgrid.remote.client import ClientSession, ensure_event_loop
from labgrid.remote.common import Place, Reservation
from labgrid.remote.generated import labgrid_coordinator_pb2 as pb
from labgrid.remote.generated import labgrid_coordinator_pb2_grpc as pb_grpc

from hil.errors import BoardError

log = logging.getLogger(__name__)

IDENTITY_PREFIX = "hil-"
CONNECT_TIMEOUT = 10.0
CALL_TIMEOUT = 30.0  # an acquire waits for every exporter of the place (10 s each at most in the coordinator)
SERIAL_CLASS = "NetworkSerialPort"
ROM_PORT, CONSOLE_PORT, JLINK_SERVICE = "rom", "console", "jlink"


class LabError(BoardError):
    """The lab could not be used: coordinator unreachable, place unknown, acquire refused, port missing.

    An infrastructure condition (retried once by the plugin), not a product failure.
    """

    hil_category = "infrastructure"


def make_identity(run: str | None = None, worker: str | None = None) -> str:
    """`host/hil-<run>-<worker>`: unique per run and per xdist worker (lab-notes §10.2).

    `run` defaults to $CI_JOB_ID, else this process's pid; `worker` to $PYTEST_XDIST_WORKER, else "main".
    The host part honours LG_HOSTNAME like labgrid-client does.
    """
    host = os.environ.get("LG_HOSTNAME") or socket.gethostname()
    run = run or os.environ.get("CI_JOB_ID") or str(os.getpid())
    worker = worker or os.environ.get("PYTEST_XDIST_WORKER") or "main"
    return f"{host}/{IDENTITY_PREFIX}{run}-{worker}"


def is_harness_identity(owner: str) -> bool:
    """True for lock owners this harness created (and may recover once their lease lapsed)."""
    _, _, user = owner.partition("/")
    return user.startswith(IDENTITY_PREFIX)


@dataclass(frozen=True)
class SerialEndpoint:
    """A place's serial port as the exporter publishes it (port is None while the place is not acquired)."""

    name: str
    host: str
    port: int | None
    speed: int
    path: str  # the device on the exporter's host (`extra.path`)

    @property
    def url(self) -> str:
        # ign_set_control: ser2net never answers SET_CONTROL (DTR/RTS) on a pty, and pyserial's open() would
        # otherwise fail with "timeout while waiting for option 'control'" (lab-notes §4.3).
        return f"rfc2217://{self.host}:{self.port}?ign_set_control"


class _Session(ClientSession):
    """labgrid's session with the identity given per object instead of from the environment.

    Its channel gets a subchannel pool of its own: gRPC otherwise shares one TCP connection between
    channels to the same address, and the coordinator tells sessions apart by their connection (two
    identities in one process would collide).
    """

    identity: str = ""

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        options = [
            ("grpc.keepalive_time_ms", 7500),
            ("grpc.keepalive_timeout_ms", 10000),
            ("grpc.http2.ping_timeout_ms", 10000),
            ("grpc.http2.max_pings_without_data", 0),
            ("grpc.use_local_subchannel_pool", 1),
        ]
        self.channel = grpc.aio.insecure_channel(target=self.address, options=options)
        self.stub = pb_grpc.CoordinatorStub(self.channel)

    def gethostname(self) -> str:
        return self.identity.partition("/")[0]

    def getuser(self) -> str:
        return self.identity.partition("/")[2]


def _details(exc: BaseException) -> str:
    if isinstance(exc, grpc.RpcError):
        details = exc.details() if hasattr(exc, "details") else None
        code = exc.code().name if hasattr(exc, "code") and exc.code() is not None else "error"
        return f"{details or code}"
    return str(exc) or type(exc).__name__


class LabClient:
    """One connection to a labgrid coordinator under one lock identity (see the module docstring)."""

    def __init__(self, coordinator: str, identity: str, *, connect_timeout: float = CONNECT_TIMEOUT) -> None:
        if "/" not in identity:
            raise ValueError(f"identity {identity!r} is not host/user")
        self.coordinator = coordinator
        self.identity = identity
        self.connect_timeout = connect_timeout
        self._session: _Session | None = None
        self._channel = grpc.insecure_channel(coordinator)
        self.stub = pb_grpc.CoordinatorStub(self._channel)

    # -- connection ------------------------------------------------------------------------------------
    def error(self, what: str, exc: BaseException | str) -> LabError:
        reason = exc if isinstance(exc, str) else _details(exc)
        return LabError(f"lab {self.coordinator}: {what}: {reason}")

    def connect(self) -> LabClient:
        """Open the session (idempotent); a LabError naming the coordinator if it is not reachable."""
        if self._session is not None:
            return self
        try:  # fail fast with a clear line instead of a session that hangs on a dead address
            grpc.channel_ready_future(self._channel).result(timeout=self.connect_timeout)
        except grpc.FutureTimeoutError:
            raise self.error(
                "coordinator not reachable", f"no answer within {self.connect_timeout:g} s (is it running?)"
            ) from None
        loop = ensure_event_loop()
        session = _Session(self.coordinator, loop)
        session.identity = self.identity
        try:
            loop.run_until_complete(asyncio.wait_for(session.start(), self.connect_timeout))
        except Exception as exc:
            with contextlib.suppress(Exception):
                loop.run_until_complete(session.close())
            raise self.error("cannot open a session", exc) from None
        self._session = session
        return self

    @property
    def session(self) -> _Session:
        if self._session is None:
            self.connect()
        assert self._session is not None
        return self._session

    def _run(self, coro: Any, timeout: float = CALL_TIMEOUT) -> Any:
        session = self.session
        if session.stopping.is_set():
            raise self.error("session lost", "the coordinator closed the connection")
        return session.loop.run_until_complete(asyncio.wait_for(coro, timeout))

    def sync(self) -> None:
        """Wait until every update the coordinator sent before now has been applied here."""
        try:
            ok = self._run(self.session.sync_with_coordinator())
        except LabError:
            raise
        except Exception as exc:
            raise self.error("sync", exc) from None
        if not ok:
            raise self.error("session lost", "the coordinator closed the connection")

    def pump(self, seconds: float) -> None:
        """Let the session receive updates for `seconds` (resource updates arrive asynchronously)."""
        self._run(asyncio.sleep(seconds), timeout=seconds + 5)

    def close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            with contextlib.suppress(Exception):
                session.loop.run_until_complete(asyncio.wait_for(session.stop(), 5))
            with contextlib.suppress(Exception):
                session.loop.run_until_complete(asyncio.wait_for(session.close(), 5))
        self._channel.close()

    def __enter__(self) -> LabClient:
        return self.connect()

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- places ----------------------------------------------------------------------------------------
    def places(self, *, fresh: bool = True) -> Mapping[str, Place]:
        if fresh:
            self.sync()
        return dict(self.session.places)

    def place(self, name: str, *, fresh: bool = True) -> Place:
        places = self.places(fresh=fresh)
        try:
            return places[name]
        except KeyError:
            known = ", ".join(sorted(places)) or "none"
            raise self.error(f"place {name!r}", f"no such place (places: {known})") from None

    def acquire(self, place: str) -> None:
        """Lock `place` for this identity (labgrid `acquire`)."""
        try:
            self._run(self.session.stub.AcquirePlace(pb.AcquirePlaceRequest(placename=place)))
        except grpc.RpcError as exc:
            raise self.error(f"acquire {place}", exc) from None
        self.sync()

    def release(self, place: str, *, fromuser: str | None = None, timeout: float = CALL_TIMEOUT) -> None:
        """Unlock `place`. With `fromuser`, only if that owner still holds it (labgrid's `release-from`,
        idempotent and race-free: a place taken over by someone else in between is left alone)."""
        request = pb.ReleasePlaceRequest(placename=place, fromuser=fromuser or self.identity)
        try:
            self.stub.ReleasePlace(request, timeout=timeout)
        except grpc.RpcError as exc:
            raise self.error(f"release {place}", exc) from None

    def ensure_place(self, name: str, matches: list[str], tags: Mapping[str, str] | None = None) -> None:
        """Create place `name` with resource `matches` ("exporter/group/*") and `tags`, if not there yet.

        Idempotent, because the coordinator keeps places across restarts only if it saved them (every 15 s,
        not on SIGTERM, lab-notes §10.4): a lab's set-up script runs this on every start.
        """
        existing = self.places().get(name)
        try:
            if existing is None:
                self._run(self.session.stub.AddPlace(pb.AddPlaceRequest(name=name)))
            have = {f"{m.exporter}/{m.group}/{m.cls}" for m in (existing.matches if existing else [])}
            for pattern in matches:
                if pattern not in have:
                    self._run(self.session.stub.AddPlaceMatch(pb.AddPlaceMatchRequest(placename=name,
                                                                                       pattern=pattern)))
            if tags:
                self._run(self.session.stub.SetPlaceTags(pb.SetPlaceTagsRequest(placename=name,
                                                                                 tags=dict(tags))))
        except grpc.RpcError as exc:
            raise self.error(f"create place {name}", exc) from None
        self.sync()

    # -- reservations ----------------------------------------------------------------------------------
    def create_reservation(self, filters: Mapping[str, str], prio: float = 0.0) -> str:
        request = pb.CreateReservationRequest(
            filters={"main": pb.Reservation.Filter(filter=dict(filters))}, prio=prio
        )
        try:
            reply = self._run(self.session.stub.CreateReservation(request))
        except grpc.RpcError as exc:
            raise self.error(f"reserve {dict(filters)}", exc) from None
        return str(reply.reservation.token)

    def poll_reservation(self, token: str, *, timeout: float = CALL_TIMEOUT) -> Reservation | None:
        """The reservation (polling also keeps it alive), or None if the coordinator no longer has it."""
        try:
            reply = self.stub.PollReservation(pb.PollReservationRequest(token=token), timeout=timeout)
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.FAILED_PRECONDITION:  # "Reservation ... does not exist"
                return None
            raise self.error(f"poll reservation {token}", exc) from None
        return Reservation.from_pb2(reply.reservation)

    def cancel_reservation(self, token: str, *, timeout: float = CALL_TIMEOUT) -> None:
        """Cancel a reservation; one that no longer exists is not an error."""
        try:
            self.stub.CancelReservation(pb.CancelReservationRequest(token=token), timeout=timeout)
        except grpc.RpcError as exc:
            if exc.code() != grpc.StatusCode.FAILED_PRECONDITION:
                raise self.error(f"cancel reservation {token}", exc) from None

    def reservations(self) -> dict[str, Reservation]:
        try:
            reply = self.stub.GetReservations(pb.GetReservationsRequest(), timeout=CALL_TIMEOUT)
        except grpc.RpcError as exc:
            raise self.error("list reservations", exc) from None
        return {r.token: Reservation.from_pb2(r) for r in reply.reservations}

    # -- resources -------------------------------------------------------------------------------------
    def _matching(self, place: Place) -> list[tuple[str, str, str, Any]]:
        """(exporter, group, name, entry) of every exported resource the place matches."""
        found = []
        for exporter, groups in self.session.resources.items():
            for group, resources in groups.items():
                for name, entry in resources.items():
                    if "cls" in entry.data and place.hasmatch((exporter, group, entry.cls, name)):
                        found.append((exporter, group, name, entry))
        return found

    def serial_endpoints(self, place: Place) -> dict[str, SerialEndpoint]:
        """The place's serial ports by resource name (port None until the exporter has started ser2net)."""
        out = {}
        for _exporter, _group, name, entry in self._matching(place):
            if entry.cls == SERIAL_CLASS:
                args = entry.args
                out[name] = SerialEndpoint(
                    name, str(args.get("host")), args.get("port"), int(args.get("speed") or 115200),
                    str(entry.extra.get("path", "")),
                )  # fmt: skip
        return out

    def network_service(self, place: Place, name: str) -> tuple[str, int] | None:
        """(address, port) of the place's NetworkService resource `name` (e.g. a J-Link's IP endpoint)."""
        for _exporter, _group, rname, entry in self._matching(place):
            if entry.cls == "NetworkService" and rname == name:
                return str(entry.args["address"]), int(entry.args.get("port") or 19020)
        return None

    def wait_serial_ports(self, place: str, names: list[str] | None = None, timeout: float = 10.0) -> dict[
        str, SerialEndpoint
    ]:
        """The acquired place's serial ports once every one has its TCP port published."""
        deadline = time.monotonic() + timeout
        while True:
            endpoints = self.serial_endpoints(self.place(place))
            wanted = [endpoints[n] for n in names if n in endpoints] if names else list(endpoints.values())
            if endpoints and wanted and all(e.port for e in wanted):
                return endpoints
            if time.monotonic() > deadline:
                have = ", ".join(f"{e.name}={e.port}" for e in endpoints.values()) or "no serial port at all"
                raise self.error(
                    f"place {place}",
                    f"no published serial port after {timeout:g} s ({have}; is its exporter running?)",
                )
            self.pump(0.02)
