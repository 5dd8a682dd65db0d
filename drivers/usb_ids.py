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
    #: The first word of the udev symlink ``/dev/kktmon/<label>-<serial>``.
    label: str

    @property
    def bridge(self) -> bool:
        """A USB-serial bridge: maybe a register, maybe a scanner, a scale or a modem."""
        return self.family is None

    @property
    def key(self) -> str:
        """``vvvv:pppp`` in lower-case hex, as lsusb, udev and ``usb://`` URLs write it."""
        return f"{self.vid:04x}:{self.pid:04x}"


KNOWN_IDS: tuple[UsbId, ...] = (
    # Shtrih-M: 1fc9:0083 (NXP's VID, a PID NXP gives its MCU customers) is the CDC-ACM
    # port of Shtrih-M registers; abcd:1980 another Shtrih-M id. Source: Shtrih-M's own
    # public driver, github shtrih-m/javapos_shtrih: Source/android/FptrServiceAndroid/
    # src/com/shtrih/hoho/android/usbserial/driver/UsbId.java (VENDOR_NXP = 0x1FC9,
    # SHTRIHM_0083 = 0x0083; VENDOR_SHTRIHM = 0xabcd, SHTRIHM_1980 = 0x1980) and
    # Source/android/tinyJavaPosTester/res/xml/device_filter.xml (vendor-id="1FC9"
    # product-id="0083" class="2" subclass="2"). usb.ids names VID abcd "LogiLink" (not
    # registered to Shtrih-M), so only PID 1980 is taken. A public POS script matches
    # Shtrih registers' ttys by ATTRS{manufacturer}=="NXP", which agrees.
    UsbId(0x1FC9, 0x0083, "shtrih", "Shtrih-M register (USB CDC)", "shtrih"),
    UsbId(0xABCD, 0x1980, "shtrih", "Shtrih-M register (USB)", "shtrih"),
    # ATOL: 2912:0005 is the register's composite USB device; interface 0 (MI_00) is its
    # VCOM port for the register protocol. Sources: the udev rule of ATOL's Linux driver
    # 10 package (90-atol-fptr.rules: SUBSYSTEM=="usb", ATTRS{idVendor}=="2912", as
    # repackaged by public Nix derivations of atol-fptr10 10.10.9.0), and public Windows
    # tools that find ATOL registers by the hardware id "USB\VID_2912&PID_0005&MI_00"
    # ("ATOL USB (COMn)"). usb.ids names VID 2912 "Audioengine" (PIDs 20c8, 30c8: DACs),
    # so only PID 0005 is taken as an ATOL register, never the whole VID.
    UsbId(0x2912, 0x0005, "atol", "ATOL register (USB VCOM)", "atol"),
    # FTDI: 0403:6001 FT232R/FT232BM and 0403:6015 FT-X (FT230X, FT231X). Sources:
    # Linux drivers/usb/serial/ftdi_sio_ids.h (FTDI_8U232AM_PID 0x6001, FTDI_FTX_PID
    # 0x6015) and usb.ids ("FT232 Serial (UART) IC", "Bridge(I2C/SPI/UART/FIFO)").
    UsbId(0x0403, 0x6001, None, "FTDI FT232R USB-serial bridge", "ftdi"),
    UsbId(0x0403, 0x6015, None, "FTDI FT-X USB-serial bridge", "ftdi"),
    # Prolific PL2303: 067b:2303. Sources: Linux drivers/usb/serial/pl2303.h
    # (PL2303_VENDOR_ID 0x067b, PL2303_PRODUCT_ID 0x2303) and usb.ids ("PL2303 Serial
    # Port / Mobile Phone Data Cable").
    UsbId(0x067B, 0x2303, None, "Prolific PL2303 USB-serial bridge", "pl2303"),
    # WCH CH340/CH341: 1a86:7523. Sources: Linux drivers/usb/serial/ch341.c
    # (USB_DEVICE(0x1a86, 0x7523)) and usb.ids ("CH340 serial converter").
    UsbId(0x1A86, 0x7523, None, "WCH CH340 USB-serial bridge", "ch340"),
    # Silicon Labs CP210x: 10c4:ea60. Sources: Linux drivers/usb/serial/cp210x.c
    # (USB_DEVICE(0x10C4, 0xEA60), "Silicon Labs factory default") and usb.ids
    # ("CP210x UART Bridge").
    UsbId(0x10C4, 0xEA60, None, "Silicon Labs CP210x USB-serial bridge", "cp210x"),
    # STMicroelectronics 0483:5740, the CDC-ACM "Virtual COM Port" of ST's STM32 USB
    # library (its usbd_desc: USBD_VID 0x0483, USBD_PID 0x5740, product "STM32 Virtual
    # ComPort in FS Mode"), kept by any STM32 gadget, hence a bridge. Viki Print (Pirit
    # protocol) registers present it: a public POS setup script finds a VikiPrint's tty by
    # ATTRS{product}=="STM32 Virtual ComPort  in FS Mode". Sources: usb.ids ("Virtual COM
    # Port") and that script. No VID:PID of Pirit/Viki Print/Dreamkas's own was found in
    # public sources, so none is listed.
    UsbId(0x0483, 0x5740, None, "STM32 CDC-ACM Virtual COM Port (Viki Print, others)", "stm32vcp"),
    # 04d9:b534: Shtrih-M's driver lists it as SHTRIH_NANO (UsbId.java above: VENDOR_SHTRIH_NANO
    # = 1241 = 0x04d9, SHTRIH_NANO = 46388 = 0xb534), but 04d9 is Holtek's VID and usb.ids
    # names b534 "LGT8F328P Microprocessor" (Arduino-style boards): a bridge, maybe a
    # Shtrih-Nano, until a probe says so.
    UsbId(0x04D9, 0xB534, None, "Holtek 04d9:b534 (Shtrih-Nano, LGT8F328P boards)", "holtek"),
)

_BY_KEY: dict[tuple[int, int], UsbId] = {(known.vid, known.pid): known for known in KNOWN_IDS}


def lookup(vid: int, pid: int) -> UsbId | None:
    """The table's row for ``vid:pid``, or None for a device we know nothing about."""
    return _BY_KEY.get((vid, pid))
