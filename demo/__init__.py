"""``kktmon demo``: a simulated shop and its service centre on one machine.

Everything runs on embedded defaults: a private Mosquitto, simulated registers, the
agent, the ticketing with SQLite and a stand-in help desk; a script of trouble follows.
"""
