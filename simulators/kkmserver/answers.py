"""The fake kkmserver's payloads, built from a DeviceState (kkmserver.md 4.1, 4.2, 4.4).

Pure functions: the app (:mod:`kktmon.simulators.kkmserver.app`) decides *whether* and *how*
to answer; these say *what* a real server would report about the register. Dates are
local time without offset, with ``0001-01-01T00:00:00`` for "none" (section 6).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from kktmon.simulators.scenario import DeviceState

NO_DATE = "0001-01-01T00:00:00"
_SESSION_STATES = {"closed": 1, "open": 2, "expired": 3}
LICENSE_UNTIL = "2154-06-06T13:04:56"


def stamp(value: datetime | None) -> str:
    return value.replace(microsecond=0).isoformat() if value else NO_DATE


def device_data(state: DeviceState, *, newer_keys: bool) -> dict[str, Any]:
    """``GetDataKKT``'s payload; ``newer_keys=False`` is an older server's ``Info``."""
    return {
        "CheckNumber": state.shift.receipts,  # receipt number in the shift, not the FD
        "SessionNumber": state.shift.number,
        "LineLength": 48,
        "URL": "",
        "Info": info(state) | (newer_info(state) if newer_keys else {}),
    }


def _common(s: DeviceState) -> dict[str, Any]:
    """The health keys ``Info`` and a ``List`` unit share."""
    return {
        "KktNumber": s.serial,
        "FnNumber": s.fn.serial,
        "RegNumber": s.rnm,
        "NameOrganization": s.organisation,
        "OFD_Error": "",
        "OFD_NumErrorDoc": s.ofd.unsent_count,
        "OFD_DateErrorDoc": stamp(s.ofd.first_unsent_at if s.ofd.unsent_count else None),
        "FN_DateEnd": f"{s.fn.valid_until.isoformat()}T00:00:00",
        "FN_IsFiscal": s.fn.phase == 0x03,
    }


def info(s: DeviceState) -> dict[str, Any]:
    """The ``Info`` keys every server version sends (the vendor sample of example K2)."""
    return _common(s) | {
        "UrlServerOfd": s.ofd.server,
        "PortServerOfd": str(s.ofd.port),
        "InnOfd": s.registration.ofd_inn,
        "TaxVariant": ",".join(str(b) for b in range(8) if s.registration.tax_systems >> b & 1),
        "InnOrganization": s.inn,
        "Command": "",
        "SessionState": _SESSION_STATES[s.shift.state],
    }


def newer_info(s: DeviceState) -> dict[str, Any]:
    """The ``Info`` keys newer servers add."""
    return {
        "FN_MemOverflowl": bool(s.fn.warnings & 0x04),
        "FN_DateStart": stamp(s.registration.registered_at),
        "FFDVersion": s.ffd.registered,
        "FFDVersionFN": s.ffd.fn,
        "FFDVersionKKT": s.ffd.device,
        "OnOff": True,
        "Active": True,
        "PaperOver": s.printer.paper == "out",
        "BalanceCash": 0,
        "DateTimeKKT": stamp(datetime.now() + timedelta(seconds=s.clock_offset_s)),
        "Firmware_Version": s.firmware,
        "Firmware_Status": 0,
        "LicenseExpirationDate": LICENSE_UNTIL,
    }


def list_unit(
    s: DeviceState, num_device: int, id_type_device: str, *, active: bool
) -> dict[str, Any]:
    """The register as one entry of ``List``'s ``ListUnit`` (example K1)."""
    return _common(s) | {
        "NumDevice": num_device,
        "IdDevice": "ed567786-c4df-4eb3-8367-42d2bbaab771",
        "OnOff": active,
        "Active": active,
        "TypeDevice": "Фискальный регистратор",
        "IdTypeDevice": id_type_device,
        "Firmware_Version": s.firmware,
        "IP": "",
        "NameDevice": s.model,
        "UnitName": "",
        "INN": s.inn,
        "TaxVariant": "0",
        "AddDate": "2017-08-29T06:21:07.9218823+00:00",
        "FN_MemOverflowl": bool(s.fn.warnings & 0x04),
        "PaperOver": s.printer.paper == "out",
    }


def server_data() -> dict[str, Any]:
    """``GetServerData``'s ``ServerData`` (example K5)."""
    now = datetime.now().replace(microsecond=0).isoformat()
    return {
        "ServerName": "KkmServer",
        "ServerVersion": "2.1.38.11",
        "ServerDateStart": now,
        "ServerUpTime": "00:00:01",
        "LicenseExpirationDate": LICENSE_UNTIL,
        "LicenseCount": 1,
        "OSName": "Linux",
        "OSPlatform": "Unix",
        "OSCurDateTime": now,
        "PCServerName": "kktmon-fake",
    }
