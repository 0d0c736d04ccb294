"""Workers in threads for the concurrency tests, each closing its own database connection."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import TypeVar

from django.db import connection

T = TypeVar("T")


def run_threads(
    work: Callable[[T], object],
    args: Iterable[T],
    *,
    barrier: threading.Barrier | None = None,
    timeout: float | None = None,
) -> list[BaseException]:
    """Run work(arg) in one thread per arg, wait for them all, and return what they raised.

    Django opens a connection per thread, so each thread closes its own when done (else the
    test database cannot be dropped). With `barrier`, a failing worker aborts it so that the
    others stop waiting at once instead of timing out. `timeout` bounds each join.
    """
    errors: list[BaseException] = []

    def run(arg: T) -> None:
        try:
            work(arg)
        except BaseException as exc:  # handed to the caller, which asserts there is none
            errors.append(exc)
            if barrier is not None:
                barrier.abort()
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(arg,)) for arg in args]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=timeout)
    return errors
