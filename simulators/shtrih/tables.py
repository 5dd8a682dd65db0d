"""The simulated register's settings tables: 1Fh (read a field), 2Dh and 2Eh (structure).

A table is its fields in order, so what 2Dh declares (the field count) is exactly what
1Fh and 2Eh answer: field 1..N of row 1, none missing. Layouts, names, sizes, ranges and
the values the state does not hold come from a real register's table export written by
the vendor's driver (shtrih-m/javapos_shtrih ``Doc/UPOS/ШТРИХ-НАНО-Ф_№048485.csv``,
firmware C.3, 2026). The ЛАЙТ-02Ф's own export is not public: its table 1 may hold a
few fields more or less (unverified). Table 18 is cut at the 13 fields this simulator's
firmware declares (the export's later firmware has 25).

Values that are facts of the state (serials, INN, RNM, FN serial, tax systems, OFD
server, the FFD version) are read from it; the rest are the export's settings.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass

from kktmon.protocol.shtrih.errors import BAD_PARAMETERS, TABLE_NOT_DEFINED
from kktmon.simulators.emulator import RefusalError
from kktmon.simulators.fn import FFD_CODES, le
from kktmon.simulators.scenario import DeviceState

Value = Callable[[DeviceState], int | str | bytes]


@dataclass(frozen=True)
class TableField:
    name: str
    size: int
    text: bool
    value: Value
    low: int = 0
    high: int | None = None  # None: the largest number ``size`` bytes hold

    @property
    def maximum(self) -> int:
        return 256**self.size - 1 if self.high is None else self.high


@dataclass(frozen=True)
class Table:
    name: str
    fields: tuple[TableField, ...]  # field 1 first
    rows: int = 1


def _setting(name: str, low: int, high: int, value: int, size: int = 1) -> TableField:
    """A BIN setting holding the export's value."""
    return TableField(name, size, False, lambda _: value, low, high)


def _chars(name: str, size: int, value: Value) -> TableField:
    return TableField(name, size, True, value)


# Table 1 "Тип и режим кассы": (name, min, max, value) of every BIN field, in order.
_TABLE_1 = [
    ("Номер кассы в магазине", 1, 99, 1),  # 11h's "number in hall"
    ("Авт. обнуление денежной наличности", 0, 1, 0),
    ("Печать рекламного текста", 0, 3, 0),
    ("---", 0, 1, 0),
    ("---", 0, 2, 1),
    ("Работа с денежным ящиком", 0, 1, 1),
    ("Отрезка чека", 0, 2, 0),
    ("Печатать дробное в количестве", 0, 1, 0),
    ("Лог. уровень дат. денежного ящика", 0, 1, 0),
    ("Длительность имп. денежного ящика", 0, 255, 10),
    ("Длительность паузы денежного ящика", 0, 255, 1),
    ("Количество имп. денежного ящика", 0, 255, 1),
    ("Использование весовых датчиков", 0, 1, 0),
    ("Начисление налогов", 0, 3, 0),
    ("Автоматический перевод времени", 0, 0, 0),
    ("Печать налогов", 1, 4, 3),
    ("Печать заголовка", 0, 1, 1),
    ("Печать единичного количества", 1, 1, 1),
    ("Сохранять строки в буфере чека", 1, 1, 1),
    ("Печать чека по закрытию", 1, 1, 1),
    ("Промотка перед отрезкой", 0, 1, 0),
    ("Отрезка при открытом чеке", 0, 1, 0),
    ("Запрет нулевого чека", 0, 1, 0),
    ("Отступ в строке типов оплаты", 0, 1, 1),
    ("Использование форматирования в чеке", 0, 3, 0),
    ("Обнуление счетчика чеков", 0, 1, 0),
    ("Контроль времени", 0, 99, 0),
    ("Отключение звука при ошибках", 0, 1, 0),
    ("Межстрочный интервал", 0, 10, 0),
    ("Тип суточного отчета", 0, 4, 0),
    ("Сжатие шрифта на чековой ленте", 0, 1, 0),
    ("Разгон при печати", 0, 1, 1),
    ("Коррекция яркости", 0, 1, 0),
    ("Яркость печати", 0, 3, 1),
    ("Печать типов оплаты", 0, 2, 1),
    ("Положение принтера", 0, 1, 0),
    ("Печать рнм", 1, 1, 1),
    ("Укороченное клише", 0, 1, 0),
    ("Печать клише после завершения документа", 0, 1, 1),
    ("Скорость печати", 0, 2, 1),
    ("Кодирование реквизитов чека", 0, 1, 1),
    ("Кодирование ссылки", 0, 2, 0),
    ("Автопечать журнала", 0, 1, 0),
    ("Ведение журнала", 0, 2, 0),
    ("Режим низкого потребления", 0, 1, 0),
    ("Признак расчета в интернет", 0, 1, 0),
    ("Таймаут автовыключения (мин)", 0, 250, 10),
    ("Включение по питанию", 0, 1, 1),
]

_TABLE_17 = [
    ("Kz бин/иин", 0, 1, 0),
    ("Kz требовать открывать смену", 0, 1, 1),
    ("Rus режим исчисления скидок", 0, 2, 2),
    ("Rus мин разм модуля qr", 4, 7, 4),
    ("Rus мин корр ошибок qr", 0, 3, 1),
    ("Rus мин размер qr в точках", 161, 255, 161),
    ("Rus не печатать документ", 0, 3, 0),  # the export's 2 prints nothing: ours prints
    ("Rus ограничить время смены", 0, 60, 1),
    ("Rus печатать сквозной номер", 0, 2, 1),
    ("Rus печать параметров офд в чеках", 0, 1, 0),
    ("Rus проверять кс инн", 0, 7, 7),
]


def _padded(text: str, size: int = 12) -> str:
    """INNs as the register keeps them: right-padded with spaces (the export's value)."""
    return text.ljust(size)


TABLES: dict[int, Table] = {
    1: Table("Тип и режим кассы", tuple(_setting(*spec) for spec in _TABLE_1)),
    17: Table(
        "Региональные настройки",
        (
            *(_setting(*spec) for spec in _TABLE_17),
            _setting("Rus печать реквизитов пользователя", 0, 524287, 63, size=4),
            _chars("Rus наименование реквизита пользователя", 64, lambda _: "Код"),
            _setting("Rus печать реквизита пользователя", 0, 1, 1),
            _setting("Rus печать отмененных документов", 0, 1, 0),
            _setting("Rus печать налога в операции", 0, 3, 2),
            TableField("Rus формат фд", 1, False, lambda s: FFD_CODES[s.ffd.device], 1, 4),
        ),
    ),
    18: Table(
        "Fiscal storage",
        (
            # The real device leaves junk after the NUL (E5): drivers must cut there.
            _chars("Serial number", 21, lambda s: s.serial.encode() + b"\x00000\x00"),
            _chars("Inn", 17, lambda s: _padded(s.inn)),
            _chars("Rnm", 21, lambda s: s.rnm),
            _chars("Fs serial number", 17, lambda s: s.fn.serial),
            TableField("Tax system", 1, False, lambda s: s.registration.tax_systems),
            TableField("Work mode", 1, False, lambda s: s.registration.work_mode),
            _chars("User", 128, lambda s: s.organisation),
            _chars("Operator", 64, lambda _: "СИСТ. АДМИН."),  # table 2 row 30's name
            _chars("Address", 128, lambda _: "г. Москва"),  # not a fact of the state
            _chars("Ofd name", 128, lambda _: 'ООО "ОФД"'),  # not a fact of the state
            _chars("Ofd url", 64, lambda s: s.ofd.server),
            _chars("Ofd inn", 17, lambda s: _padded(s.registration.ofd_inn)),
            _chars("Tax office url", 64, lambda _: "www.nalog.gov.ru"),
        ),
    ),
    19: Table(
        "Параметры офд",
        (
            _chars("Сервер", 64, lambda s: s.ofd.server),
            TableField("Порт", 2, False, lambda s: s.ofd.port, 1, 65535),
        ),
    ),
}


def _text(value: str, size: int) -> bytes:
    return value.encode("cp1251", errors="replace")[:size].ljust(size, b"\x00")


def _table(number: int) -> Table:
    table = TABLES.get(number)
    if table is None:
        raise RefusalError(TABLE_NOT_DEFINED)
    return table


def _field(number: int, field: int) -> TableField:
    fields = _table(number).fields
    if not 1 <= field <= len(fields):
        raise RefusalError(BAD_PARAMETERS)
    return fields[field - 1]


def read_field(state: DeviceState, params: bytes) -> bytes:
    """1Fh: table, row (2), field -> the value, BIN little-endian or CHAR NUL-padded."""
    number, row, field = struct.unpack("<BHB", params)
    spec = _field(number, field)
    if not 1 <= row <= _table(number).rows:
        raise RefusalError(BAD_PARAMETERS)
    value = spec.value(state)
    if isinstance(value, int):
        return le(value, spec.size)
    return value[: spec.size] if isinstance(value, bytes) else _text(value, spec.size)


def structure(number: int) -> bytes:
    """2Dh: name (40), row count (2), field count (1)."""
    table = _table(number)
    return _text(table.name, 40) + le(table.rows, 2) + bytes([len(table.fields)])


def field_structure(number: int, field: int) -> bytes:
    """2Eh: name (40), type, size, then min and max of a BIN field."""
    spec = _field(number, field)
    head = _text(spec.name, 40) + bytes([int(spec.text), spec.size])
    if spec.text:
        return head + b"\x00\x00"  # what real devices append after a CHAR field's size
    return head + le(spec.low, spec.size) + le(spec.maximum, spec.size)
