"""Stop fairseq's data-loading threads before Python finalises, so the CLIs exit with 0.

fairseq's ``BufferedIterator`` fills its queue from a daemon ``BackgroundConsumer`` thread.
When ``fairseq-train`` (or eval-lm, generate) returns while such a thread is still collating
a batch, Python finalises with the thread alive. If the thread is then freeing a tensor that
wraps a numpy array (fairseq's datasets are memory-mapped numpy), the tensor's deleter waits
for the GIL, finalisation makes that wait ``pthread_exit`` the thread, and the unwind through
a C++ ``noexcept`` destructor calls ``std::terminate``: ``terminate called without an active
exception``, SIGABRT, exit code 134 after a completed run - fatal for ``set -e`` recipes. The
outcome depends on thread timing (stock fairseq has the same race; here it showed up in about
3 of 4 short runs).

:func:`stop_background_consumers` runs at ``atexit`` (still before finalisation, while daemon
threads run normally): it tells each live consumer to stop after its current item and drains
its queue until the thread has returned.
"""
import atexit
import queue
import threading
import time

_STOP_TIMEOUT_S = 10.0  # per thread; a consumer stuck in a dead data loader is left as it was


def stop_background_consumers(timeout: float = _STOP_TIMEOUT_S) -> int:
    """Stop every live fairseq ``BackgroundConsumer`` thread; returns how many were stopped."""
    from fairseq.data.iterators import BackgroundConsumer

    stopped = 0
    for thread in threading.enumerate():
        if not isinstance(thread, BackgroundConsumer) or not thread.is_alive():
            continue
        # run() breaks out of its loop once count >= _max_len, right after the current put
        thread._max_len = 0
        deadline = time.monotonic() + timeout
        while thread.is_alive() and time.monotonic() < deadline:
            try:  # a full queue blocks the consumer's put: make room until it has returned
                thread._queue.get(timeout=0.01)
            except queue.Empty:
                pass
        stopped += not thread.is_alive()
    return stopped


def install_clean_exit() -> None:
    """Register :func:`stop_background_consumers` to run at interpreter exit (once)."""
    if not getattr(install_clean_exit, "_done", False):
        atexit.register(stop_background_consumers)
        install_clean_exit._done = True
