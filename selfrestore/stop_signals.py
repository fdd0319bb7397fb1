"""Ctrl-C (SIGINT) and SIGTERM (``kill``, a batch system's time limit) that stop long work at a point where its
state is whole: the end of a training step (:func:`selfrestore.train.train`) or of a video frame's fine-tuning
(:func:`selfrestore.video.stop_after_frame`), so that what is saved there resumes exactly."""
from __future__ import annotations

import signal
import sys
import threading
from typing import Any


class StopSignals:
    """While :attr:`inside` (from :meth:`defer` to :meth:`allow`), a first signal is recorded (:attr:`pending`;
    :attr:`terminated` for SIGTERM) and announced, to be taken at :meth:`allow` or wherever the caller looks
    (calling the object: "was a stop asked?"); a second Ctrl-C there stops at once (KeyboardInterrupt,
    :attr:`abandoned`: the state in memory may not be whole, not to be saved); a repeated SIGTERM (a batch system
    and torchrun both send one) never stops the save that is coming. Outside, a signal raises KeyboardInterrupt at
    once. Only in the main thread; SIGINT stays ignored where the shell ignores it (a background job) or a C
    extension holds it, SIGTERM is taken over only from its default action (death); :meth:`restore` gives the
    previous handlers back. ``unit`` / ``saving``: the words of the announcement ("this step", "a checkpoint")."""

    def __init__(self, enabled: bool = True, unit: str = "step", saving: str = "a checkpoint"):
        self.enabled = enabled and threading.current_thread() is threading.main_thread()
        self.unit, self.saving = unit, saving
        self.inside = self.pending = self.abandoned = self.terminated = False
        self.previous: dict[int, Any] = {}

    def install(self) -> None:
        if not self.enabled:
            return
        if signal.getsignal(signal.SIGINT) not in (signal.SIG_IGN, None):
            self.previous[signal.SIGINT] = signal.signal(signal.SIGINT, self._handle)
        if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
            self.previous[signal.SIGTERM] = signal.signal(signal.SIGTERM, self._handle)

    def restore(self) -> None:
        self.inside = False
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)
        self.previous.clear()

    def _handle(self, signum: int, frame: Any) -> None:
        term = signum == signal.SIGTERM
        if term and (self.terminated or self.pending):
            self.terminated = True
            return
        self.terminated = self.terminated or term
        if self.inside and not self.pending:
            self.pending = True
            print(f"\n{'SIGTERM' if term else 'Ctrl-C'}: stopping after this {self.unit} to save {self.saving}"
                  + ("" if term else " (Ctrl-C again: stop at once, losing the work since the last save)"),
                  file=sys.stderr)
            return
        self.abandoned = self.inside
        raise KeyboardInterrupt

    def __call__(self) -> bool:
        """Whether a stop was asked and waits to be taken."""
        return self.pending

    def defer(self) -> None:
        """From here a signal waits for :meth:`allow`."""
        self.inside = True

    def allow(self) -> None:
        """Signals take effect at once again; one that came since :meth:`defer` is raised now."""
        self.inside = False
        if self.pending:
            self.pending = False
            raise KeyboardInterrupt
