"""Core 1 while it sits in the bootrom: a model of the ROM's wait_for_vector loop (datasheet 2.8.2), used when the
emulator has no ROM code of its own to run there.

After reset core 1 drains its RX FIFO and sends core 0 a 0, then waits for the launch sequence core 0 sends
through the FIFO: 0, 0, 1, vector table, stack pointer, entry, each echoed back (a 0 at any point restarts the
handshake: drain, send 0; anything but 1 where 1 is expected restarts it too). The model answers at the moment
core 0's word arrives (the ROM's own few dozen cycles of polling are not counted) and, once the entry is echoed,
hands (VTOR, SP, entry) to `on_launch`.
"""

from __future__ import annotations

STATE_WANT_1, STATE_VTOR, STATE_SP, STATE_ENTRY, STATE_LAUNCHED = range(5)


class Core1Bootrom:
    def __init__(self, sio1, on_launch):
        self.sio = sio1                   # core 1's view of the SIO
        self.on_launch = on_launch
        self.state = STATE_WANT_1
        self.vtor = self.sp = 0
        self.sio.shared.readers[1] = self.receive
        self._restart()                   # at reset: drain, send 0 (core 0 starts with VLD = 1)

    def _rx(self):
        return self.sio.shared.fifo[0]    # core 0 -> core 1

    def _send(self, word: int):
        self.sio.fifo_write(word)

    def _restart(self):
        self._rx().clear()
        self.state = STATE_WANT_1
        self._send(0)

    def receive(self):
        """Core 0 wrote a word into core 1's RX FIFO: consume it as the ROM would."""
        while self._rx() and self.state != STATE_LAUNCHED:
            word = self._rx().popleft()
            if word == 0 or (self.state == STATE_WANT_1 and word != 1):
                self._restart()
                continue
            self._send(word)              # echo
            if self.state == STATE_VTOR:
                self.vtor = word
            elif self.state == STATE_SP:
                self.sp = word
            elif self.state == STATE_ENTRY:
                self.state = STATE_LAUNCHED
                self.sio.shared.readers[1] = None
                self.on_launch(self.vtor, self.sp, word)
                return
            self.state += 1
