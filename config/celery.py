"""The Celery app. With no CELERY_BROKER_URL, settings make tasks run eagerly in-process; with
`filesystem://` (the quick start) the web process and the worker share a folder instead of a
Redis (config/settings.py names the folders).

Tasks go to queues by the resource they need (settings.CELERY_TASK_ROUTES, WORKER_QUEUES:
cpu, gpu, io); each worker process records a heartbeat row the admin can see (core.health)."""

from __future__ import annotations

import os
import uuid
from time import monotonic

from celery import Celery, signals
from kombu.transport import filesystem
from kombu.utils.json import dumps

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")


class FilesystemChannel(filesystem.Channel):
    """kombu's file channel, except that a message appears whole: kombu creates the file and
    then writes it, so a worker listing the folder in between could take an empty message.
    Here it is written under a name the reader skips (a leading dot) and renamed in place."""

    def _put(self, queue: str, payload: dict, **kwargs) -> None:
        name = f"{round(monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        partial = os.path.join(self.data_folder_out, f".{name}.part")
        try:
            with open(partial, "wb") as f:
                f.write(dumps(payload).encode())
            os.replace(partial, final)
        except OSError as exc:
            raise filesystem.ChannelError(f"Cannot add file {final!r} to directory") from exc


class FilesystemTransport(filesystem.Transport):
    Channel = FilesystemChannel


@signals.worker_init.connect
@signals.worker_process_init.connect
def _one_opencv_thread_per_process(**kwargs) -> None:
    """A worker process is the unit of parallelism (prefork children, more workers, more
    machines): OpenCV's own thread pool (the face detector) in each would oversubscribe the
    cores, so that two workers on two cores ran no faster than one. OPENCV_THREADS (default 1;
    0 lets OpenCV choose) sets it."""
    import cv2
    from django.conf import settings

    cv2.setNumThreads(int(settings.OPENCV_THREADS))


@signals.worker_ready.connect
def _start_heartbeat(sender=None, **kwargs) -> None:
    """sender: the worker's consumer (its hostname, the queues it listens to)."""
    from core import health

    queues: list[str] = []
    task_consumer = getattr(sender, "task_consumer", None)
    if task_consumer is not None:
        queues = sorted(q.name for q in task_consumer.queues)
    hostname = getattr(sender, "hostname", "") or ""
    health.start_heartbeat(hostname, queues=queues)


@signals.worker_shutdown.connect
def _stop_heartbeat(sender=None, **kwargs) -> None:
    from core import health

    health.stop_heartbeat()


app = Celery("humanbeauty")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
