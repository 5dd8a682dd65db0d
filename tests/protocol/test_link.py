"""The vendor-neutral link vocabulary: one driver loop runs every vendor's link machine.

Shtrih-M's ``HostLink``, Pirit's ``HostLink`` and Pirit's ``LinkCheck`` are driven by
the same loop below against scripted registers; ``kktmon.protocol.shtrih`` still
exports the very same action classes it always did.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import pirit_vectors as pv
import shtrih_vectors as sv

from kktmon.protocol.link import Done, LinkMachine, Purge, Send
from kktmon.protocol.pirit import link as pirit_link
from kktmon.protocol.shtrih import frame as shtrih_frame
from kktmon.protocol.shtrih import link as shtrih_link

A = TypeVar("A")
Register = Callable[[bytes], bytes]


def drive(machine: LinkMachine[A], register: Register) -> A:
    """The generic driver loop of ``kktmon.protocol.link``'s docstring, I/O replaced."""
    inbox = b""
    actions = machine.start()
    while not machine.done:
        for action in actions:
            if isinstance(action, Purge):
                inbox = b""
            elif isinstance(action, Send):
                inbox += register(action.data)
        data, inbox = inbox, b""
        actions = machine.receive(data) if data else machine.timeout()
    assert machine.answer is not None
    assert [a for a in actions if isinstance(a, Done)] == [Done(machine.answer)]
    return machine.answer


def shtrih_register(request: bytes, answer: bytes) -> Register:
    def respond(data: bytes) -> bytes:
        if data == b"\x05":
            return b"\x15"  # idle
        return b"\x06" + answer if data == request else b""

    return respond


def pirit_register(request: bytes, reply: bytes, silent_once: bool = False) -> Register:
    state = {"silent": silent_once}

    def respond(data: bytes) -> bytes:
        if data == b"\x05":
            return b"\x06" + (reply if state.pop("pending", False) else b"")
        if data == request and state["silent"]:
            state.update(silent=False, pending=True)  # busy: reply only after ENQ
            return b""
        return reply if data == request else b""

    return respond


def test_one_loop_drives_shtrih() -> None:
    vector = sv.VECTORS[0]
    request, answer = vector.request or b"", vector.answer or b""
    frame = drive(shtrih_link.HostLink(request), shtrih_register(request, answer))
    assert frame == shtrih_frame.decode_frame(answer)


def test_one_loop_drives_pirit() -> None:
    vector = pv.VECTORS[4]
    request, reply = vector.request or b"", vector.reply or b""
    assert drive(pirit_link.HostLink(request), pirit_register(request, reply)).packet_id == 0x24
    busy = pirit_link.HostLink(request)
    assert drive(busy, pirit_register(request, reply, silent_once=True)).command == 0x78
    assert busy.retries == 1 and busy.alive


def test_one_loop_drives_the_enq_probe() -> None:
    assert drive(pirit_link.LinkCheck(), lambda data: b"\x06") == 0x06


def test_bare_done_compares_by_answer() -> None:
    assert Done(b"x") == Done(b"x") != Done(b"y")
