"""The benchmark harness: this gateway, flask-sse 1.0.0 and a bare gevent ceiling, side by side.

    python -m bench            # the full run (see docs/benchmarks.md)
    python -m bench --smoke    # a few hundred clients for a few seconds (CI)

Every server under test runs in its own process, started and stopped here; the load
client runs in several processes of its own (``bench.loadclient``).
"""
