"""Shtrih-M error codes a monitor meets, with their meanings (shtrih-m.md section 6).

On FN-era firmware codes 01h-20h are passed through from the fiscal drive; the rest
belong to the register. :data:`ERROR_MEANINGS` are English renderings of the vendor's
texts, what the agent reports; :data:`VENDOR_TEXTS` are the vendor's own Russian texts,
what a register answers to 6Bh "error text" (the simulator answers from them).

Sources of the Russian texts: the vendor's Java driver, shtrih-m/javapos_shtrih
``Source/FiscalPrinterService/src/res/messages_ru.txt`` (``FSPrinterErrorNN`` for the FN
codes 01h-20h, ``PrinterErrorNN`` for the rest), which repeats the error table of the
protocol document; oleg-golovanov/pyshtrih ``pyshtrih/excepts.py`` carries the same
register texts.
"""

from __future__ import annotations

UNSUPPORTED = 0x37
WRONG_PASSWORD = 0x4F
STILL_PRINTING = 0x50
NO_DATA_IN_FN = 0x08
WRONG_FN_STATE = 0x02
BAD_PARAMETERS = 0x33
TABLE_NOT_DEFINED = 0x5D

ERROR_MEANINGS: dict[int, str] = {
    0x01: "FN: unknown command, bad format or unknown parameters",
    0x02: "FN: wrong FN state for this command",
    0x03: "FN failure",
    0x04: "FN crypto-coprocessor failure",
    0x05: "FN: parameters do not match the FN lifetime (FN lifetime over)",
    0x06: "FN archive full",
    0x07: "FN: wrong date/time",
    0x08: "FN: requested data not found",
    0x09: "FN: parameter value out of range",
    0x10: "FN: TLV data too big",
    0x11: "FN: no transport connection to the OFD",
    0x12: "FN resource exhausted (fiscal mode must be closed)",
    0x14: "FN storage for OFD documents exhausted",
    0x15: "FN: oldest unsent document waited more than 30 days",
    0x16: "FN: shift longer than 24 hours",
    0x17: "FN: time between documents differs more than 5 minutes from the FN timer",
    0x20: "FN: OFD message cannot be accepted",
    0x2F: "timeout talking to the FN",
    0x30: "FN does not answer",
    0x33: "wrong command parameters",
    0x34: "no data",
    0x35: "parameter wrong for these settings",
    0x36: "parameter wrong for this implementation",
    0x37: "command not supported by this model or firmware",
    # Seen on real frames (issue 13). javapos_shtrih messages_ru.txt PrinterError4D and
    # pyshtrih excepts.py 0x4D: "Вносимая безналичной оплатой сумма больше суммы чека".
    0x4D: "amount paid by non-cash means exceeds the receipt total",
    0x4E: "shift exceeded 24 hours",
    0x4F: "wrong password",
    0x50: "still printing the result of the previous command",
    0x58: "waiting for the 'continue printing' command",
    0x5D: "table not defined",
    0x6B: "no receipt paper",
    0x72: "command not supported in this submode",
    0x73: "command not supported in this mode",
    0x7E: "wrong value in the length field",
    0xC0: "date and time must be confirmed",
    0xC8: "printer error: no tachometer pulses",
}

#: The vendor's own texts for the codes above (sources in the module docstring); FN
#: codes carry the "ФН: " prefix the vendor's driver gives them.
VENDOR_TEXTS: dict[int, str] = {
    0x00: "Ошибок нет",
    0x01: "ФН: Неизвестная команда, неверный формат посылки или неизвестные параметры",
    0x02: "ФН: Неверное состояние ФН",
    0x03: "ФН: Ошибка ФН",
    0x04: "ФН: Ошибка КС",
    0x05: "ФН: Закончен срок эксплуатации ФН",
    0x06: "ФН: Архив ФН переполнен",
    0x07: "ФН: Неверные дата и/или время",
    0x08: "ФН: Нет запрошенных данных",
    0x09: "ФН: Некорректное значение параметров команды",
    0x10: "ФН: Превышение размеров TLV данных",
    0x11: "ФН: Нет транспортного соединения",
    0x12: "ФН: Исчерпан ресурс КС (криптографического сопроцессора)",
    0x14: "ФН: Исчерпан ресурс хранения",
    0x15: "ФН: Исчерпан ресурс ожидания передачи сообщения",
    0x16: "ФН: Продолжительность смены более 24 часов",
    0x17: "ФН: Неверная разница во времени между 2 операциями",
    0x20: "ФН: Сообщение от ОФД не может быть принято",
    0x2F: "ФН: Таймаут связи",
    0x30: "ФН: ФН ответила NAK",
    0x33: "Некорректные параметры в команде",
    0x34: "Нет данных",
    0x35: "Некорректный параметр при данных настройках",
    0x36: "Некорректные параметры в команде для данной реализации",
    0x37: "Команда не поддерживается в данной реализации",
    0x4D: "Вносимая безналичной оплатой сумма больше суммы чека",
    0x4E: "Смена превысила 24 часа",
    0x4F: "Неверный пароль",
    0x50: "Идет печать предыдущей команды",
    0x58: "Ожидание команды продолжения печати",
    0x5D: "Таблица не определена",
    0x6B: "Нет чековой ленты",
    0x72: "Команда не поддерживается в данном подрежиме",
    0x73: "Команда не поддерживается в данном режиме",
    0x7E: "Неверное значение в поле длины",
    0xC0: "Контроль даты и времени (подтвердите дату и время)",
    0xC8: "Ошибка связи с принтером",
}
