"""Fixtures: the twin's RF instrument services on free ports, in a background event-loop thread."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from loop_support import LoopThread
from rfi_rig import EmissionLog, ToneSource

from twin.rf_instruments import AnalyzerService, GeneratorService


@pytest.fixture(scope="module")
def loop_thread() -> Iterator[LoopThread]:
    lt = LoopThread()
    yield lt
    lt.close()


@pytest.fixture
def analyzer(loop_thread: LoopThread) -> Iterator[tuple[AnalyzerService, ToneSource, str]]:
    source = ToneSource()
    service = AnalyzerService(source)
    port = loop_thread.run(service.start("127.0.0.1", 0))
    yield service, source, f"TCPIP0::127.0.0.1::{port}::SOCKET"
    loop_thread.run(service.stop())


@pytest.fixture
def generator(loop_thread: LoopThread) -> Iterator[tuple[GeneratorService, EmissionLog, str]]:
    log = EmissionLog()
    service = GeneratorService(log)
    port = loop_thread.run(service.start("127.0.0.1", 0))
    yield service, log, f"TCPIP0::127.0.0.1::{port}::SOCKET"
    loop_thread.run(service.stop())
