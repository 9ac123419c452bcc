"""Waiting on events that another process writes (a marker file), never on a timer."""
import threading


def wait_for_file(path):
    """Until ``path`` exists (an event written by another process); a generous cap only against a hang."""
    for _ in range(6000):
        if path.exists():
            return
        threading.Event().wait(0.05)
    raise AssertionError(f"{path} never appeared")
