"""Building each recipient's message: in this process, or in builder processes on another core."""

from __future__ import annotations

import dataclasses
import os
from typing import Callable, Sequence

from digest.delivery.audience import subscriber_from_row
from digest.delivery.dkim import signer_for
from digest.delivery.mime import MimeSkeleton
from digest.errors import DigestError
from digest.store.rows import RecipientRow


_FROM_SETTINGS = object()  # make_build's default: the signer [dkim] describes


def make_build(personalizer, needs_mime: bool, *, strip_parts: bool = False,
               dkim=_FROM_SETTINGS) -> Callable[[Sequence[RecipientRow]], list]:
    """rows → one OutgoingMessage per row (MIME built, and DKIM-signed, when needed), or the DigestError for that row.

    `strip_parts` drops the html/text strings once the MIME bytes hold them (only the bytes need to
    travel back from a builder process). `dkim` is a DkimSigner or None; by default the one the
    personaliser's settings configure (its keys read and parsed here, once).
    """
    skeleton = MimeSkeleton(from_addr=personalizer.from_addr, reply_to=personalizer.reply_to)
    if dkim is _FROM_SETTINGS:
        dkim = signer_for(personalizer.settings) if needs_mime else None
    sign = dkim.sign if dkim is not None and needs_mime else None
    replace = dataclasses.replace

    def build(rows: Sequence[RecipientRow]) -> list:
        out: list = []
        for row in rows:
            try:
                msg = personalizer.message_for(subscriber_from_row(row), row.id)
                if needs_mime:
                    mime = skeleton.build(msg)
                    if sign is not None:  # here, in the builder, so the sending threads only send
                        mime = sign(mime)
                    msg = replace(msg, mime=mime, html="", text="") if strip_parts else replace(msg, mime=mime)
                out.append(msg)
            except DigestError as exc:
                out.append(exc)
        return out
    return build


_PROCESS_BUILD: list = []  # the build function inside a builder process


def _init_process(personalizer, needs_mime: bool, parent: int, dkim=None) -> None:
    import signal
    import threading
    import time

    # Ctrl-C and SIGTERM reach the whole process group (a terminal, systemd, docker stop); they are
    # for the sending process, which stops cleanly and then shuts this pool down.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    _PROCESS_BUILD[:] = [make_build(personalizer, needs_mime, strip_parts=needs_mime, dkim=dkim)]

    def exit_with_parent() -> None:
        # A builder holds both ends of its task pipe, so it never sees EOF: if `digest send` is
        # killed (-9, OOM), the builder would wait forever. It leaves when its parent is gone.
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(0)

    threading.Thread(target=exit_with_parent, daemon=True, name="digest-builder-watch").start()


def _build_in_process(rows: Sequence[RecipientRow]) -> list:
    return _PROCESS_BUILD[0](rows)


class ProcessBuilder:
    """Builds messages in `processes` separate processes while the sending threads send.

    Personalising and MIME encoding are CPU-bound and hold the GIL; in another process they run
    on another core. 'spawn' (not fork) so no child inherits the ledger's SQLite connection or the
    send lock. The SendLoop calls `.submit(rows)` and gets a Future.
    """

    def __init__(self, personalizer, needs_mime: bool, processes: int):
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        self.processes = processes
        # The key is read here, so a missing or unreadable one is an error before any process starts.
        dkim = signer_for(personalizer.settings) if needs_mime else None
        self._pool = ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("spawn"),
                                         initializer=_init_process,
                                         initargs=(personalizer, needs_mime, os.getpid(), dkim))

    def submit(self, rows: Sequence[RecipientRow]):
        """Start building one batch; a Future of the build's list."""
        return self._pool.submit(_build_in_process, list(rows))

    def close(self) -> None:
        """Stop the builder processes."""
        self._pool.shutdown(wait=True, cancel_futures=True)


def build_processes(requested: int | None, to_send: int, needs_mime: bool) -> int:
    """How many builder processes to use: `requested` if given, else 1 when it pays (see bench/send.py)."""
    if requested is not None:
        return max(0, requested)
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    # Starting a process costs ~0.3 s (spawn + imports + unpickling the rendered issue): only worth it
    # for a few thousand messages and when there is a second core to build on.
    return 1 if cpus >= 2 and needs_mime and to_send >= 2000 else 0


def close_quietly(closable) -> None:
    """Close a transport or builder; a failure to close must not hide the run's outcome."""
    try:
        closable.close()
    except Exception:  # noqa: BLE001
        pass


