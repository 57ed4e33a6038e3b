"""The embedded broker used when no REDIS_URL is set (`make run`): kombu's in-memory
transport, woken by each message rather than polled.

kombu's memory transport polls its queues (`polling_interval`, once a second by default),
so every job waited for the next poll before its worker saw it: 5 ms on average at the
10 ms this project set, and more on a loaded machine, on every embedded job's path. Here a
put sets an event that the waiting worker sleeps on (with the polling interval only as the
longest sleep), so a message is taken as soon as it is sent. Messages still pass only
between threads of one process, as with kombu's own."""

import socket
import threading
from queue import Empty
from time import monotonic

from kombu.transport import memory

# How many messages were put so far, and the condition that waiting consumers sleep on.
_arrivals = threading.Condition()
_puts = 0


def _arrived() -> None:
    global _puts
    with _arrivals:
        _puts += 1
        _arrivals.notify_all()


def _wait_for_a_put(*, after: int, at_most: float) -> None:
    with _arrivals:
        _arrivals.wait_for(lambda: _puts != after, at_most)


class Channel(memory.Channel):
    def _put(self, queue, message, **kwargs):
        super()._put(queue, message, **kwargs)
        _arrived()

    def _put_fanout(self, exchange, message, routing_key=None, **kwargs):
        super()._put_fanout(exchange, message, routing_key, **kwargs)
        _arrived()


class Transport(memory.Transport):
    Channel = Channel

    def drain_events(self, connection, timeout=None):
        started = monotonic()
        while True:
            seen = _puts  # read before looking: a message put after the look ends the wait
            try:
                self.cycle.get(self._deliver, timeout=timeout)
                return
            except Empty:
                waited = monotonic() - started
                if timeout is not None and waited >= timeout:
                    raise socket.timeout() from None
                longest = self.polling_interval or 1.0
                _wait_for_a_put(after=seen, at_most=longest if timeout is None else min(longest, timeout - waited))
