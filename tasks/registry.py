"""The typed Celery app and task base, and the registry every task module adds its tasks to.

A task is a function beside its domain (``tasks/inventory.py`` has the inventory tasks),
declared with ``@task(name, autoretry_for=...)``. ``register_tasks`` puts all of them on one
:class:`RakudaCelery` app, with the retry policy of its settings: each app (one per test, say)
has its own tasks, bound to its own :class:`~tasks.runtime.Runtime`.

Retries are Celery's own (``autoretry_for``, ``retry_backoff``, ``retry_backoff_max``,
``retry_jitter``, ``max_retries``): a wait drawn between 0 and TASK_RETRY_BACKOFF x 2^retries
whole seconds (at most TASK_RETRY_BACKOFF_MAX), at most TASK_MAX_RETRIES times, then the
exception fails the task. A task that retries only part of its batch, or records a final
state once the retries are spent, calls ``RakudaTask.retry_with_backoff`` (the same policy).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

from celery import Celery, Task
from celery.utils.time import get_exponential_backoff_interval

from shared.config import Settings
from shared.redis_client import broker_url
from tasks.errors import TransientError

if TYPE_CHECKING:
    from tasks.runtime import Runtime

F = TypeVar("F", bound=Callable[..., Any])

log = logging.getLogger(__name__)


class RakudaTask(Task[Any, Any]):
    """Base task: knows its Runtime, and retries the way ``autoretry_for`` does."""

    abstract = True
    # Set per app by register_tasks (celery-types does not declare them on Task).
    retry_backoff: int = 0
    retry_backoff_max: int = 600
    retry_jitter: bool = True

    @property
    def runtime(self) -> Runtime:
        app = self.app
        if not isinstance(app, RakudaCelery):
            raise TypeError(f"task {self.name} runs only on a RakudaCelery app, not on {app!r}")
        return app.runtime

    def can_retry(self) -> bool:
        return self.max_retries is None or self.request.retries < self.max_retries

    def retry_with_backoff(self, exc: Exception, **options: Any) -> NoReturn:
        """Retry with the same backoff and limit as ``autoretry_for``, for what it cannot express:
        a retry of only part of the arguments (``args=``), or one whose caller records a final
        state itself once ``can_retry()`` is False instead of letting the exception fail the task."""
        countdown = (get_exponential_backoff_interval(self.retry_backoff, self.request.retries,
                                                      self.retry_backoff_max, self.retry_jitter)
                     if self.retry_backoff else self.default_retry_delay)
        raise self.retry(exc=exc, countdown=countdown, **options)


    def retry_the_failed(self, ids: list[int], errors: dict[int, str], doing: str) -> None:
        """Retry this batch task for ``ids`` alone (those that failed transiently) while retries
        remain; past them, log that it gave up ``doing`` them, with each one's error."""
        if not ids:
            return
        if self.can_retry():
            self.retry_with_backoff(TransientError("; ".join(errors.values())), args=[ids])
        log.error("gave up %s %s: %s", doing, ids, errors)


class RakudaCelery(Celery[RakudaTask]):
    """A Celery app whose tasks reach the database, the bus and the remote clients through ``runtime``."""

    def __init__(self, settings: Settings, runtime: Runtime) -> None:
        super().__init__("rakuda", broker=broker_url(settings), task_cls=RakudaTask, set_as_current=False)
        self.runtime = runtime


@dataclass(frozen=True)
class TaskSpec:
    name: str
    run: Callable[..., Any]
    autoretry_for: tuple[type[Exception], ...]


TASKS: dict[str, TaskSpec] = {}


def task(name: str, *, autoretry_for: tuple[type[Exception], ...] = ()) -> Callable[[F], F]:
    """Declare ``run(task, /, *args)`` as the task ``name`` (from ``shared.task_names``)."""

    def declare(run: F) -> F:
        if name in TASKS:
            raise ValueError(f"task {name!r} declared twice: {TASKS[name].run.__qualname__} and {run.__qualname__}")
        TASKS[name] = TaskSpec(name, run, autoretry_for)
        return run

    return declare


def register_tasks(app: RakudaCelery, settings: Settings) -> None:
    """Register every declared task on ``app`` (not shared: each app has its own), with the retry
    policy of TASK_MAX_RETRIES, TASK_RETRY_BACKOFF and TASK_RETRY_BACKOFF_MAX.

    Celery counts the backoff in whole seconds: the base is rounded up (a TASK_RETRY_BACKOFF of 0
    retries at once), the maximum down.
    """
    for spec in TASKS.values():
        app.task(name=spec.name, bind=True, base=RakudaTask, shared=False, autoretry_for=spec.autoretry_for,
                 max_retries=settings.task_max_retries, retry_backoff=math.ceil(settings.task_retry_backoff_s),
                 retry_backoff_max=int(settings.task_retry_backoff_max_s), retry_jitter=True,
                 default_retry_delay=0)(spec.run)
