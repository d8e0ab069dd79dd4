"""A background thread that runs the bridge's sweep every few seconds."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from waimai_bridge.pipeline.actors import Swept

logger = logging.getLogger(__name__)


class Sweeper:
    """Calls ``sweep`` every ``interval_s`` seconds until stopped."""

    def __init__(self, sweep: Callable[[], Swept], *, interval_s: float = 15.0) -> None:
        self._sweep = sweep
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="waimai-sweeper", daemon=True)

    def start(self) -> None:
        """Start sweeping in the background."""
        self._thread.start()

    def stop(self) -> None:
        """Stop, and wait for a sweep under way to finish."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            try:
                swept = self._sweep()
            except Exception:  # the database or broker is down: try again next round
                logger.warning("sweep failed; retrying in %ss", self._interval_s, exc_info=True)
                continue
            if any(vars(swept).values()):
                logger.info("swept: %s", swept)
