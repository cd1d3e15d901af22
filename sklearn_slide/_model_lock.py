"""The concurrency contract of one estimator: a readers-writer lock per model.

Training (``fit``, ``partial_fit``) changes the network's arrays and hash
tables in place while the engine runs without the GIL; a prediction running at
the same time would walk tables being rebuilt (a segfault, issue 17). So, per
estimator object:

- training calls run one at a time, and never while a prediction runs;
- predictions (``predict_topk``, ``predict``, ``predict_proba``, ``score``,
  pickling) run concurrently with each other, each on one consistent model.

A thread that already holds the lock may take it again (``score`` calls
``predict_topk``; a prediction inside training reads the model it trains).
Waiting writers block new readers, so a stream of predictions cannot starve
training. The lock lives outside the estimator (a weak mapping, like
``_derived_cache``): it is not pickled or cloned, and prediction leaves
``__dict__`` unchanged. Shallow copies (``copy.copy``) share the arrays but
not the lock: give each thread its own ``copy.deepcopy`` or ``clone``.
"""

import functools
import threading
import weakref
from contextlib import contextmanager

_LOCKS = weakref.WeakKeyDictionary()
_LOCKS_GUARD = threading.Lock()


class ModelLock:
    """Readers-writer lock, reentrant per thread, writers preferred."""

    def __init__(self):
        self._condition = threading.Condition(threading.Lock())
        self._readers = 0
        self._writer = None  # thread ident of the writer
        self._writers_waiting = 0
        self._held = threading.local()  # this thread's read depth

    @contextmanager
    def reading(self):
        me = threading.get_ident()
        if self._writer == me or getattr(self._held, "reads", 0):
            yield  # already inside: the model cannot change under this thread
            return
        with self._condition:
            while self._writer is not None or self._writers_waiting:
                self._condition.wait()
            self._readers += 1
        self._held.reads = 1
        try:
            yield
        finally:
            self._held.reads = 0
            with self._condition:
                self._readers -= 1
                if not self._readers:
                    self._condition.notify_all()

    @contextmanager
    def writing(self):
        me = threading.get_ident()
        if self._writer == me:
            yield
            return
        if getattr(self._held, "reads", 0):
            # Waiting for the readers to finish would wait for this thread.
            raise RuntimeError("cannot train a SlideClassifier from inside its own prediction")
        with self._condition:
            self._writers_waiting += 1
            try:
                while self._writer is not None or self._readers:
                    self._condition.wait()
            finally:
                self._writers_waiting -= 1
            self._writer = me
        try:
            yield
        finally:
            with self._condition:
                self._writer = None
                self._condition.notify_all()


def lock_of(estimator):
    """The lock of ``estimator``, created on first use."""
    with _LOCKS_GUARD:
        lock = _LOCKS.get(estimator)
        if lock is None:
            lock = _LOCKS[estimator] = ModelLock()
        return lock


def reads_model(method):
    """Decorator: ``method`` runs under the estimator's read lock."""
    @functools.wraps(method)
    def locked(self, *args, **kwargs):
        with lock_of(self).reading():
            return method(self, *args, **kwargs)
    return locked


def trains_model(method):
    """Decorator: ``method`` runs under the estimator's write lock."""
    @functools.wraps(method)
    def locked(self, *args, **kwargs):
        with lock_of(self).writing():
            return method(self, *args, **kwargs)
    return locked
