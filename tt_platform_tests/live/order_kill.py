"""Kills this process with SIGKILL right after the ``KILL_AT``-th order was written to the socket,
before its acknowledgement is read; the killed order's ref goes to the file ``KILL_MARK``. For
sessions started in a subprocess by the kill tests (environment variables name both)."""

from __future__ import annotations

import os
import signal
import time


def kill_after_orders() -> None:
    from tt_platform.ib import trading

    placed: list[str] = []
    waiting = trading.IBTrading._until

    async def until(self, request, trades, condition, deadline):
        if request.startswith("placeOrder"):
            kill_at = int(os.environ["KILL_AT"])
            # a batch of orders is on the wire at once: the KILL_AT-th order of the session is killed
            reached = len(placed) < kill_at <= len(placed) + len(trades)
            placed.extend(t.order.orderRef for t in trades)
            if reached:
                time.sleep(0.3)  # the order is on the wire; its acknowledgement is never read
                with open(os.environ["KILL_MARK"], "w") as mark:
                    mark.write(placed[kill_at - 1])
                os.kill(os.getpid(), signal.SIGKILL)
        return await waiting(self, request, trades, condition, deadline)

    trading.IBTrading._until = until
