"""Pure, sans-I/O codecs for cash-register protocols and the shared health model.

Nothing in this package touches a socket, a serial port or the clock: every function
takes bytes (or typed values) and returns bytes (or typed values). Drivers feed the
link-layer state machines with whatever their transport delivered.

Glossary of the Russian domain terms used across kktmon (English names in code):

=============  =========================  =====================================================
Russian        English name in code       Meaning
=============  =========================  =====================================================
ККТ            register, kkt              the online cash register (fiscal printer)
ФН             fn, fiscal drive           crypto module + archive inside the register
ФД             fiscal document, fd        any signed document (receipt, shift report, ...)
ФФД            ffd                        fiscal data format version (1.0, 1.05, 1.1, 1.2)
ОФД            ofd                        fiscal data operator that confirms every document
РНМ            rnm                        registration number issued by the tax service
ЗН ККТ         serial                     the register's factory serial number
ИНН            inn                        taxpayer id of the register's owner
смена          shift                      the trading day between shift-open and Z-report
АСЦ / ЦТО      service centre             our users: the register's service company
=============  =========================  =====================================================
"""
