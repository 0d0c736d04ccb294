"""The quick start's broker made of files (config/celery.py): a message is invisible to the
workers until it is whole, then taken once."""

from __future__ import annotations

import os
from queue import Empty

import pytest
from kombu import Connection

import config.celery
from config.celery import FilesystemTransport


def connection(folder) -> Connection:
    return Connection(
        "filesystem://",
        transport=FilesystemTransport,
        transport_options={"data_folder_in": str(folder), "data_folder_out": str(folder),
                           "control_folder": str(folder / "control")},
    )


def test_a_message_is_invisible_until_written_whole(tmp_path, monkeypatch):
    folder = tmp_path / "queue"
    folder.mkdir()
    renamed = []
    real_replace = os.replace

    with connection(folder) as writer, connection(folder) as reader:
        consumer = reader.SimpleQueue("jobs")

        def replace_while_watching(src, dst):
            # The moment before the message takes its name: written, yet no worker sees it.
            assert os.path.basename(src).startswith(".")
            assert os.path.getsize(src) > 0
            with pytest.raises(Empty):
                consumer.get(block=False)
            renamed.append(os.path.basename(dst))
            real_replace(src, dst)

        monkeypatch.setattr(config.celery.os, "replace", replace_while_watching)
        writer.SimpleQueue("jobs").put({"job": 7})
        assert len(renamed) == 1 and renamed[0].endswith(".jobs.msg")
        message = consumer.get(timeout=2)
        assert message.payload == {"job": 7}
        message.ack()
        with pytest.raises(Empty):
            consumer.get(block=False)
        consumer.close()
    assert [p.name for p in folder.iterdir() if p.is_file()] == []
