"""The live bench view: a small web page beside every run (docs/live-view.md).

One job per module:

* :mod:`bench.live.feed` — what the page shows, gathered *off* the run's hot path: the run's journal is tailed
  (every measurement is already written there the moment it is taken), the power monitor's samples are read
  in batches, and the collected test list, the open operator prompt and the final verdict are set by the
  pytest side (fixtures/live.py). The server's thread drains it; the test thread never waits for it.
* :mod:`bench.live.prompts` — the operator prompt as the page and the terminal see it: the first answer wins.
* :mod:`bench.live.control` — the page's two controls: the emergency stop (the same latched stop as
  `bench safe`, journaled as "browser <client addr>") and the prompt answers; nothing else can be changed.
* :mod:`bench.live.server` — Starlette + uvicorn in a daemon thread: the page, server-sent events, the
  controls (per-run token), the run's report files. Its errors are logged, never raised into the run.
* ``page/`` — the hand-written page (HTML, JS, CSS) and the vendored uPlot chart library (MIT, with its
  licence): nothing is loaded from the network, the bench PC may be offline.
"""
