"""Shared by the command-line tests that run a job on a pseudo-terminal (pty.fork)."""
import os
import select
import time


def wait_exit(pid, fd, seen=b"", seconds=5):
    """Reads what the job writes to its terminal until it exits (killed after `seconds`).
    Returns (its exit code, or None when it had to be killed; everything read)."""
    status = None
    deadline = time.time() + seconds
    while time.time() < deadline:
        done, st = os.waitpid(pid, os.WNOHANG)
        if done:
            status = st
            break
        try:
            if select.select([fd], [], [], 0.05)[0]:
                seen += os.read(fd, 200)
        except OSError:  # the job's side closed
            time.sleep(0.05)
    if status is None:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
    try:
        while select.select([fd], [], [], 0.1)[0]:
            seen += os.read(fd, 200)
    except OSError:
        pass
    return (os.waitstatus_to_exitcode(status) if status is not None else None), seen
