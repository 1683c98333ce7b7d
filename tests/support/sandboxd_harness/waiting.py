"""Waiting for a condition instead of sleeping for a while.

A test that sleeps guesses how long something takes, and is slow when the
guess is generous and flaky when it is not. wait_until asks the condition
itself, often, and gives up at a deadline with a message saying what did not
happen.
"""
import time


def wait_until(condition, timeout, what, interval=0.02):
    """Calls `condition()` until it returns something true, and returns that.

    Raises TimeoutError after `timeout` seconds; `what` (a string, or a
    function giving one, called only then) says what was waited for.
    Exceptions from `condition` propagate: a condition that can tell the wait
    is hopeless (the process it watches exited) raises at once.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{what() if callable(what) else what}: not within {timeout} s")
        time.sleep(interval)
