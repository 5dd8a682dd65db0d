"""The drivers that speak a register's own protocol over a byte transport.

A wire vendor's poll is a sequence of reads, declared as a table in
``drivers/<vendor>/reads.py`` (like the subdrivers of NUT's ``nutdrv_qx``): one
:class:`Read` per request names the command, its sub number and parameters, the parser
of its answer and whether it is slow (FN archive reads get the archive timeout). A read
that needs a value known only at run time (a table field, an archive document number)
is a small function of the vendor's ``reads`` module that returns a :class:`Read`.

:class:`WireDriver` runs them, the same way for every vendor:

* :meth:`WireDriver._ask`, a read that must succeed: the whole exchange is retried when
  garbled (:meth:`Session.retrying`), asked once more when its answer never came from a
  register that still answers its link check (:class:`NoAnswerError`), and a refusal
  fails the poll;
* :meth:`WireDriver._optional`, a read whose absence degrades to null: "unsupported
  command" is remembered per (command, sub) and not asked again; a refusal whose code is
  in :attr:`WireDriver.degrade_codes` (the vendor's "not now" codes) degrades this poll
  only; any other refusal fails the poll.

The vendor supplies one hook, :meth:`WireDriver._exchange`: the read turned into the
vendor's request by its protocol's ``commands`` module (the allowlist gate refuses any
other command before a byte of it exists) and run over the vendor's sans-I/O link
machine with :meth:`Session.run_link`, which is the only place bytes reach a transport.
When the link gives up on a register that answered its link check all along (ENQ got
ACK, a status poll got a reply: :meth:`Session.heard_only` or the link's own word),
``_exchange`` raises :class:`NoAnswerError` instead of the bare timeout.

Lost answers: every command on the vendors' allowlists is a read, so a read whose answer
never came is asked again, once per read (the vendors' "never re-send" advice guards
commands that change state, which never reach the wire from here). The re-ask counts in
``link.retries``; a read still unanswered fails the poll as ``busy`` with
``busy_reason`` ``no_answer`` and ``last_error`` ``NO_ANSWER``: the register is alive and
on the line, so neither a dead cable nor a port held by the POS.
"""

from __future__ import annotations

import time
from abc import abstractmethod
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar

import tenacity

from kktmon.drivers.base import Clock, Driver, DriverOptions, TransportFactory, local_now
from kktmon.drivers.transport import open_transport
from kktmon.protocol.errors import (
    ChecksumError,
    DeviceError,
    FrameError,
    KktmonError,
    LinkTimeoutError,
    MalformedAnswerError,
    NoAnswerError,
    TransportClosedError,
    UnexpectedAnswerError,
    UnsupportedCommandError,
)
from kktmon.protocol.health import BusyReason, LinkState
from kktmon.protocol.link import LinkMachine, Purge, Send, Wait, WaitKind

T = TypeVar("T")
#: How much of one link run :attr:`Session.heard` keeps: enough to tell control bytes
#: from a frame, never a whole archive answer.
HEARD_LIMIT = 512


#: What a vendor's link machine returns: an answer frame, an answer's bytes, a reply.
A = TypeVar("A")


@dataclass(frozen=True)
class Read(Generic[A, T]):
    """One read-only request and what its answer becomes: a row of a vendor's table.

    ``sub`` is the vendor's sub-command or sub number (None for commands without one),
    ``params`` the numbers that follow it, encoded by the vendor's protocol; ``slow``
    reads wait :attr:`DriverOptions.archive_timeout_s` for their answer.
    """

    command: int
    sub: int | None
    parse: Callable[[A], T]
    params: tuple[int, ...] = ()
    slow: bool = False

    @property
    def key(self) -> tuple[int, int | None]:
        """What "unsupported" is remembered by: a model lacks a command or a sub of it."""
        return (self.command, self.sub)


def _name(read: Read[Any, Any]) -> str:
    sub = f" {read.sub:02X}h" if read.sub is not None else ""
    return f"{read.command:02X}h{sub}"


class Session:
    """One poll's open port: the transport, the deadline and the link figures."""

    def __init__(self, url: str, factory: TransportFactory, options: DriverOptions) -> None:
        self.url = url
        self.options = options
        self._factory = factory
        self.deadline = time.monotonic() + options.poll_deadline_s
        self.retries = 0
        #: The first :data:`HEARD_LIMIT` bytes the register sent during the last
        #: :meth:`run_link`, whether or not they made an answer.
        self.heard = b""
        self._closed_tx = self._closed_rx = 0
        self.transport = factory(url)

    @property
    def bytes_tx(self) -> int:
        return self._closed_tx + self.transport.bytes_tx

    @property
    def bytes_rx(self) -> int:
        return self._closed_rx + self.transport.bytes_rx

    def remaining(self) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise LinkTimeoutError(f"{self.url}: poll deadline of {self.options.poll_deadline_s} s")
        return left

    def run_link(self, link: LinkMachine[T], timeout_for: Callable[[WaitKind], float]) -> T:
        """Drive any vendor's sans-I/O link machine over this transport to its answer."""
        self.heard = b""
        actions = link.start()
        try:
            while True:
                wait = WaitKind.CONTROL
                for action in actions:
                    if isinstance(action, Purge):
                        self.transport.reset_input()
                    elif isinstance(action, Send):
                        self.transport.write(action.data)
                    elif isinstance(action, Wait):
                        wait = action.kind
                if link.done and link.answer is not None:
                    return link.answer
                data = self.transport.read(512, min(timeout_for(wait), self.remaining()))
                if len(self.heard) < HEARD_LIMIT:
                    self.heard += data[: HEARD_LIMIT - len(self.heard)]
                actions = link.receive(data) if data else link.timeout()
        finally:
            self.retries += link.retries

    def heard_only(self, control: Collection[int]) -> bool:
        """Whether the last link run heard the register, and nothing but ``control``
        bytes: it answered the link's checks (ENQ, a resent frame) and sent no frame."""
        return bool(self.heard) and set(self.heard) <= set(control)

    def reopen(self) -> None:
        """Replace a transport the peer closed (a TCP register dropping the client)."""
        self._closed_tx += self.transport.bytes_tx
        self._closed_rx += self.transport.bytes_rx
        self.transport.close()
        self.transport = self._factory(self.url)

    def retrying(self, exchange: Callable[[], T]) -> T:
        """Run one request/answer exchange, retrying garbled or dropped exchanges.

        Link-level retries (ENQ, NAK resend) happen inside the vendor's state machine;
        this is the next level up: the whole exchange again, with backoff, bounded by
        the poll deadline. Silence is not retried here: the link already gave up (a
        register that answered its link check is asked again by :meth:`WireDriver._ask`).
        """
        retryer = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self.options.exchange_attempts)
            | tenacity.stop_after_delay(max(self.deadline - time.monotonic(), 0)),
            wait=tenacity.wait_exponential(multiplier=0.05, max=1.0),
            retry=tenacity.retry_if_exception_type(_RETRYABLE),
            before_sleep=self._before_retry,
            reraise=True,
        )
        return retryer(exchange)

    def _before_retry(self, state: tenacity.RetryCallState) -> None:
        self.retries += 1
        outcome = state.outcome
        if outcome is not None and isinstance(outcome.exception(), TransportClosedError):
            self.reopen()

    def close(self) -> None:
        self.transport.close()


_RETRYABLE = (ChecksumError, FrameError, UnexpectedAnswerError, TransportClosedError)


class WireDriver(Driver[Session], Generic[A]):
    """Base of the drivers that speak a register's own protocol over a byte transport.

    ``A`` is what the vendor's link machine answers with, the input of its parsers.
    """

    #: The vendor's device error codes that mean "not now" for one fact (wrong FN
    #: state, no such data yet): an optional read degrades to null for this poll only.
    degrade_codes: ClassVar[frozenset[int]] = frozenset()

    def __init__(
        self,
        url: str,
        options: DriverOptions | None = None,
        *,
        transport_factory: TransportFactory = open_transport,
        clock: Clock = local_now,
    ) -> None:
        self._transport_factory = transport_factory  # before setup(), which may wrap it
        self._unsupported: set[tuple[int, int | None]] = set()
        super().__init__(url, options, clock=clock)

    def _open_session(self) -> Session:
        return Session(self.url, self._transport_factory, self.options)

    def _ask(self, session: Session, read: Read[A, T]) -> T:
        """A read that must succeed for the poll to mean anything.

        Its answer lost while the register still answers its link check: asked once
        more (a read is harmless to repeat, and the loss is often one bad moment on the
        line); lost again, the :class:`NoAnswerError` fails the poll.
        """

        def exchange() -> T:
            return read.parse(self._exchange(session, read))

        try:
            return session.retrying(exchange)
        except NoAnswerError:
            session.retries += 1
            return session.retrying(exchange)

    def _optional(self, session: Session, read: Read[A, T]) -> T | None:
        """A read whose absence degrades a field to null instead of failing the poll."""
        if read.key in self._unsupported:
            return None
        try:
            return self._ask(session, read)
        except UnsupportedCommandError:
            self._unsupported.add(read.key)
            return None
        except DeviceError as exc:
            if exc.code in self.degrade_codes:
                return None
            raise
        except MalformedAnswerError as exc:
            # A framed answer whose content is odd (an impossible date, a short record):
            # that one fact is null, counted and logged once; the poll stands.
            self._count_invalid(read, exc)
            return None

    def _count_invalid(self, read: Read[A, Any], exc: MalformedAnswerError) -> None:
        self._read_as_null(_name(read), f"{self.url}: answer to {_name(read)} read as null: {exc}")

    def _link_state(self, exc: KktmonError) -> LinkState:
        if isinstance(exc, NoAnswerError):
            return LinkState.BUSY  # alive on the line, the read unanswered
        return super()._link_state(exc)

    def _busy_reason(self, exc: KktmonError) -> str:
        if isinstance(exc, NoAnswerError):
            return BusyReason.NO_ANSWER
        return super()._busy_reason(exc)

    @abstractmethod
    def _exchange(self, session: Session, read: Read[A, Any]) -> A:
        """Send ``read`` as the vendor's request over its link machine; the raw answer.

        A link that gives up although the register answered its link check all along
        raises :class:`NoAnswerError` (see the module docstring), any other silence the
        plain :class:`LinkTimeoutError`.
        """
