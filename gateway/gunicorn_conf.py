"""gunicorn settings for the gateway: gevent workers, no preload, nothing secret in the logs.

    gunicorn -c gateway/gunicorn_conf.py 'gateway.app:create_app()'
"""

import os
import resource
from typing import Any


def _kernel_somaxconn() -> int:
    try:
        with open("/proc/sys/net/core/somaxconn") as limit:
            return max(2048, int(limit.read()))
    except (OSError, ValueError):
        return 2048


bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '5000')}"
# gevent, plus a fair share of new connections between workers (gateway/accept_balance.py).
worker_class = "gateway.gunicorn_worker.BalancedGeventWorker"
workers = int(os.environ.get("WEB_CONCURRENCY", "1"))
# Each stream holds one greenlet; leave room above the gateway's own limit for other routes.
worker_connections = int(os.environ.get("SSE_MAX_CONNECTIONS", "18000")) + 500
# gevent patches in the worker after fork; preloading would import ssl & co unpatched.
preload_app = False
# The accept queue, as deep as the kernel allows (net.core.somaxconn; gunicorn's own default is
# 2048). After a restart every dashboard reconnects within a few seconds, while the new worker is
# still importing: a connect that finds the queue full has its SYN dropped, and the client's
# kernel tries again only 1, 3, 7... seconds later. WEB_BACKLOG sets another depth.
backlog = int(os.environ.get("WEB_BACKLOG") or _kernel_somaxconn())
timeout = 30
graceful_timeout = 5
keepalive = 5
# "off" (or /dev/null) turns the access log off: gunicorn would still format every line for /dev/null.
# With LOG_FORMAT=json too (gateway/access_log.py: gunicorn formats whenever a logconfig_dict is set).
_access_log = os.environ.get("ACCESS_LOG", "-").strip()
accesslog = None if _access_log in ("off", "/dev/null") else _access_log
# %(U)s is the path WITHOUT the query string: stream tokens (?token=) never reach the log.
access_log_format = '%(h)s "%(m)s %(U)s %(H)s" %(s)s %(B)s %(M)sms'
errorlog = "-"
# Control characters in a logged path or header are escaped: one request is always one line.
logger_class = "gateway.access_log.EscapingLogger"
loglevel = os.environ.get("LOG_LEVEL", "info")
_json_logs = os.environ.get("LOG_FORMAT", "text").strip().lower() == "json"
if _json_logs:
    # One JSON object per line from gunicorn, the access log and the app (shared/logs.py);
    # the request id of an access line is the X-Request-ID the gateway answered with.
    from shared.logs import gunicorn_logconfig

    logconfig_dict = gunicorn_logconfig(loglevel, accesslog)
    access_log_format = '%(h)s "%(m)s %(U)s %(H)s" %(s)s %(B)s %(M)sms %({x-request-id}o)s'


def on_starting(server: Any) -> None:
    # RAKUDA_ENV=production: refuse weak secrets and keys before any worker starts (one line, exit 1).
    from shared.config import Settings
    from shared.production import refuse_to_start_if_unsafe

    refuse_to_start_if_unsafe(Settings.from_env())
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def post_fork(server: Any, worker: Any) -> None:
    # psycopg2 would block the whole gevent hub on every query without this.
    from psycogreen.gevent import patch_psycopg

    patch_psycopg()
    if not _json_logs:
        # gunicorn writes only its own loggers in text format; the app's (gateway.*) go to the root
        # logger, which would otherwise keep Python's default: WARNING and up, message only.
        from shared.logs import configure_logging

        configure_logging("text", loglevel)


def worker_exit(server: Any, worker: Any) -> None:
    from gateway.services import services_in

    parts = services_in(getattr(worker, "wsgi", None))
    if parts is not None:
        parts.stop()

# gunicorn 25+ opens a control socket at one fixed path; several gateways (tests, bench)
# on one machine would fight over it.
control_socket_disable = True


def post_worker_init(worker: Any) -> None:
    """Start the gateway's background work (the one place: see ``Services.start``); close every
    stream as soon as the worker is asked to stop.

    gunicorn waits up to graceful_timeout for requests to end, and a stream never ends by
    itself: without this, every restart would hold dashboards for that long before they
    reconnect (with Last-Event-ID) elsewhere.
    """
    import gevent

    from gateway.services import services_in

    parts = services_in(worker.wsgi)
    if parts is None:  # another app served with this configuration (the benchmark's baselines)
        return
    # Start reading and reporting now: an idle worker still counts in /status and learns
    # which addresses other processes blocked.
    parts.start()

    def close_streams_on_stop() -> None:
        while worker.alive:
            gevent.sleep(0.05)
        stop_accepting()
        parts.stop()

    gevent.spawn(close_streams_on_stop)


def stop_accepting() -> None:
    """Stop this worker's accept loop now, not at gunicorn's next 1 s tick.

    The listening socket is shared with the master and the other workers (and, during a
    graceful reload, with the new ones): only this process stops taking connections from it,
    so none lands on a worker that is about to close it.
    """
    import gc

    from gevent.server import StreamServer

    for server in [o for o in gc.get_objects() if isinstance(o, StreamServer)]:
        server.stop_accepting()
