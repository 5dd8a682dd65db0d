"""The USB vendor and product ids of registers and of the USB-serial bridges inside them.

One row per VID:PID, with the registry's vendor name when the id belongs to a register
maker (``family``), or ``None`` for a bridge chip: an FTDI, Prolific, WCH or Silicon Labs
converter, or a generic CDC-ACM "Virtual COM Port", is in many registers and in many
things that are not registers, so a bridge is only "maybe a register" until a probe
answers (``kktmon scan`` probes it).

Every id cites where it comes from; an id without a public source is left out rather
than guessed. ``deploy/udev/99-kktmon.rules`` grants access to the same ids
(``tests/deploy/test_udev.py`` keeps the two in step).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class UsbId:
    """One known VID:PID and what it says about the device."""

    vid: int
    pid: int
    #: The registry's vendor name (``shtrih``, ``atol``, ``pirit``) or None for a bridge.
    family: str | None
    #: What the id is, for people (a scan's table, the udev rules' comments).
    name: str

    @property
    def bridge(self) -> bool:
        """A USB-serial bridge: maybe a register, maybe a scanner, a scale or a modem."""
        return self.family is None

    @property
    def key(self) -> str:
        """``vvvv:pppp`` in lower-case hex, as lsusb, udev and ``usb://`` URLs write it."""
        return f"{self.vid:04x}:{self.pid:04x}"


KNOWN_IDS: tuple[UsbId, ...] = (
    # ATOL: VID 2912, PID 0005 is the register's composite USB device; interface 0 (MI_00)
    # is its VCOM port for the register protocol. Sources: the udev rule ATOL's Linux
    # driver 10 package installs (90-atol-fptr.rules: SUBSYSTEM=="usb",
    # ATTRS{idVendor}=="2912", as repackaged in public Nix derivations of atol-fptr10
    # 10.10.9.0), and public Windows tools that find ATOL registers by the hardware id
    # "USB\VID_2912&PID_0005&MI_00" ("ATOL USB (COMn)"). Note: linux-usb.org's usb.ids
    # (systemd's 20-usb-vendor-model.hwdb) names VID 2912 "Audioengine" (PIDs 20c8,
    # 30c8: DACs), so only PID 0005 is taken as an ATOL register, never the whole VID.
    UsbId(0x2912, 0x0005, "atol", "ATOL register (USB VCOM)"),
    # FTDI: 0403:6001 FT232R/FT232BM and 0403:6015 FT-X (FT230X, FT231X). Sources:
    # Linux drivers/usb/serial/ftdi_sio_ids.h (FTDI_8U232AM_PID 0x6001, FTDI_FTX_PID
    # 0x6015) and usb.ids ("FT232 Serial (UART) IC", "Bridge(I2C/SPI/UART/FIFO)").
    UsbId(0x0403, 0x6001, None, "FTDI FT232R USB-serial bridge"),
    UsbId(0x0403, 0x6015, None, "FTDI FT-X USB-serial bridge"),
    # Prolific PL2303: 067b:2303. Sources: Linux drivers/usb/serial/pl2303.h
    # (PL2303_VENDOR_ID 0x067b, PL2303_PRODUCT_ID 0x2303) and usb.ids ("PL2303 Serial
    # Port / Mobile Phone Data Cable").
    UsbId(0x067B, 0x2303, None, "Prolific PL2303 USB-serial bridge"),
    # WCH CH340/CH341: 1a86:7523. Sources: Linux drivers/usb/serial/ch341.c
    # (USB_DEVICE(0x1a86, 0x7523)) and usb.ids ("CH340 serial converter").
    UsbId(0x1A86, 0x7523, None, "WCH CH340 USB-serial bridge"),
    # Silicon Labs CP210x: 10c4:ea60. Sources: Linux drivers/usb/serial/cp210x.c
    # (USB_DEVICE(0x10C4, 0xEA60), "Silicon Labs factory default") and usb.ids
    # ("CP210x UART Bridge").
    UsbId(0x10C4, 0xEA60, None, "Silicon Labs CP210x USB-serial bridge"),
    # STMicroelectronics 0483:5740, the CDC-ACM "Virtual COM Port" of ST's STM32 USB
    # library: the generic CDC-ACM id any STM32 gadget may keep, hence a bridge. Source:
    # usb.ids ("Virtual COM Port").
    UsbId(0x0483, 0x5740, None, "STM32 CDC-ACM Virtual COM Port"),
)

_BY_KEY: dict[tuple[int, int], UsbId] = {(known.vid, known.pid): known for known in KNOWN_IDS}


def lookup(vid: int, pid: int) -> UsbId | None:
    """The table's row for ``vid:pid``, or None for a device we know nothing about."""
    return _BY_KEY.get((vid, pid))
