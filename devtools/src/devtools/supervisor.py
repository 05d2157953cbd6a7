"""The foreground supervisor behind `zt run`: it knows processes, not the app. Each service runs as a
child in its own process group, started in order, each ready before the next unless it says the next
needs nothing of it (then they start side by side); on a signal or a child's death the whole stack goes
down: no child may outlive the supervisor. With `restart`, a service that dies after it was healthy is
started again instead, as Azure Container Apps restarts a failed replica, unless it keeps dying."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO
from urllib.parse import urlsplit

import httpx

from devtools.files import write_private
from devtools.ports import bindable
from devtools.processes import Child

Describe = Callable[[], Mapping[str, object]]
# Lines about the described stack for the summary; never secrets: terminal output ends up in logs.
Summary = Callable[[Mapping[str, object]], Iterable[str]]

POLL_INTERVAL = 0.2
HEALTH_REQUEST_TIMEOUT = 1.0
EXIT_PORT_IN_USE = 2
EXIT_FAILED = 1
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
# A service that dies this often within the window is broken, not unlucky: the stack stops.
RESTARTS_ALLOWED, RESTART_WINDOW_SECONDS = 3, 60.0


@dataclass(frozen=True)
class Service:
    name: str
    argv: tuple[str, ...]
    # A mapping, or a callable evaluated just before the service starts.
    env: Mapping[str, str] | Callable[[], Mapping[str, str]]
    health_url: str
    # Key under which stack.json publishes this service's base URL (None: someone else describes it).
    stack_key: str | None = None
    # Ports it listens on besides the health URL's, so a clash is refused up front, not found mid-start.
    extra_ports: tuple[int, ...] = ()
    # For what has no /healthz (health_url is then tcp://host:port): True once it is ready.
    ready: Callable[[], bool] | None = None
    # Run just before it starts, once what it depends on is up; an exception stops the stack with its message.
    prepare: Callable[[], None] | None = None
    # False: the next service needs nothing of this one, so it starts at once, not once this one is ready.
    wait: bool = True

    @property
    def base_url(self) -> str:
        return "{0.scheme}://{0.netloc}".format(urlsplit(self.health_url))

    @property
    def port(self) -> int:
        parts = urlsplit(self.health_url)
        return parts.port or (443 if parts.scheme == "https" else 80)

    @property
    def ports(self) -> tuple[int, ...]:
        return (self.port, *self.extra_ports)


def run_stack(
    services: Sequence[Service],
    *,
    stack_file: Path,
    describe: Describe,
    ca_bundle: Path,
    summary: Summary | None = None,
    ready_timeout: float = 30.0,
    stop_timeout: float = 5.0,
    out: TextIO | None = None,
    restart: bool = False,
) -> int:
    """Run `services` until SIGINT/SIGTERM/SIGHUP (exit 0) or until one fails (non-zero)."""
    out = out or sys.stdout
    runner = _Runner(list(services), stack_file, describe, summary, ca_bundle, stop_timeout, out, restart=restart)
    return runner.run(ready_timeout)


class _StackFailed(Exception): ...


@dataclass
class _Runner:
    services: list[Service]
    stack_file: Path
    describe: Describe
    summary: Summary | None
    ca_bundle: Path
    stop_timeout: float
    out: TextIO
    restart: bool = False
    restarts: dict[str, list[float]] = field(default_factory=dict)
    out_lock: threading.Lock = field(default_factory=threading.Lock)
    children: list[Child] = field(default_factory=list)
    # Set by the signal handler. A plain int, not a threading.Event: Event.set() from a handler
    # can deadlock on the Event's own lock if the signal lands while the main thread holds it.
    stop_signal: int = 0

    def log(self, message: str) -> None:
        with self.out_lock:
            self.out.write(message + "\n")
            self.out.flush()

    def run(self, ready_timeout: float) -> int:
        busy = [(s, port) for s in self.services for port in s.ports if not bindable(port)]
        if busy:
            for s, port in busy:
                self.log(f"zt: port {port} on 127.0.0.1 is already in use; {s.name} needs it.")
            self.log("zt: is another `zt run` still running? Stop it (or whatever holds the port) first.")
            return EXIT_PORT_IN_USE
        # A stack.json left by a runner that was killed outright would point tools at a dead stack.
        self.stack_file.unlink(missing_ok=True)
        # Handlers installed until every child is gone: a second Ctrl-C must not cut the stopping short.
        previous = {signum: signal.signal(signum, self._request_stop) for signum in STOP_SIGNALS}
        try:
            # In order, each ready before the next starts (a service may need what an earlier one created),
            # except where a service says the next needs nothing of it.
            deadline = time.monotonic() + ready_timeout
            for service in self.services:
                self._start(service)
                if (service.wait or service is self.services[-1]) and not self._wait_ready(deadline):
                    break
            else:
                self._publish()
                while not self._pause():
                    self._check_children()
                    self._recheck_restarted()
            if self.stop_signal:
                self.log(f"zt: received {signal.Signals(self.stop_signal).name}")
            return 0
        except _StackFailed as failure:
            self.log(f"zt: {failure}")
            return EXIT_FAILED
        finally:
            # Withdraw stack.json first so no tool picks up a stack that is going away.
            self.stack_file.unlink(missing_ok=True)
            self._stop_children()
            for signum, handler in previous.items():
                # None means a handler installed outside Python, which cannot be put back from here.
                signal.signal(signum, signal.SIG_DFL if handler is None else handler)

    def _request_stop(self, signum: int, _frame: object) -> None:
        # Only flag it: raising (or even logging, which takes a lock) here could interrupt Popen or
        # cleanup half-way and orphan a child.
        self.stop_signal = self.stop_signal or signum

    def _pause(self) -> bool:
        """Sleep one poll interval; True if a stop was requested."""
        if not self.stop_signal:
            time.sleep(POLL_INTERVAL)
        return bool(self.stop_signal)

    def _start(self, service: Service) -> None:
        if service.prepare is not None:
            try:
                service.prepare()
            except Exception as exc:
                raise _StackFailed(f"could not prepare {service.name}: {exc}") from exc
        try:
            proc = subprocess.Popen(  # noqa: S603 - argv comes from our own service list, never a shell
                list(service.argv),
                env=dict(service.env() if callable(service.env) else service.env),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                # Its own session keeps terminal Ctrl-C away from the child (we stop it in order) and
                # gives us a process group to signal, which reaches any grandchildren it spawns too.
                start_new_session=True,
            )
        except OSError as exc:
            raise _StackFailed(f"could not start {service.name} ({' '.join(service.argv)}): {exc}") from exc
        self.children.append(Child(service, proc, self.log))
        self.log(f"zt: started {service.name} (pid {proc.pid})")

    def _check_children(self) -> None:
        for child in list(self.children):
            code = child.proc.poll()
            if code is not None:
                child.settle()
                how = f"was killed by {signal.Signals(-code).name}" if code < 0 else f"exited with code {code}"
                if child.healthy and self._may_restart(child.service.name):
                    self.log(f"zt: {child.service.name} {how}; starting it again (--restart)")
                    _signal_group(child.proc.pid, signal.SIGKILL)  # anything it left behind
                    self.children.remove(child)
                    self._start(child.service)
                    continue
                when = "while the stack was running; stopping the rest" if child.healthy else "before it became healthy"
                raise _StackFailed(f"{child.service.name} {how} {when}" + child.tail_text())

    def _may_restart(self, name: str) -> bool:
        if not self.restart:
            return False
        now = time.monotonic()
        recent = [t for t in self.restarts.get(name, []) if now - t < RESTART_WINDOW_SECONDS]
        self.restarts[name] = [*recent, now]
        return len(recent) < RESTARTS_ALLOWED

    def _recheck_restarted(self) -> None:
        if pending := [c for c in self.children if not c.healthy]:
            with self._health_client() as client:
                self._poll(client, pending, "healthy again")

    def _health_client(self) -> httpx.Client:
        context = ssl.create_default_context(cafile=str(self.ca_bundle))
        # trust_env=False: a developer's HTTP(S)_PROXY must not swallow requests meant for localhost.
        return httpx.Client(verify=context, timeout=HEALTH_REQUEST_TIMEOUT, trust_env=False)

    def _poll(self, client: httpx.Client, pending: list[Child], state: str) -> None:
        for child in pending:
            ready = child.service.ready
            if ready() if ready is not None else _healthy(client, child.service.health_url):
                child.healthy = True
                self.log(f"zt: {child.service.name} is {state} at {child.service.health_url}")

    def _wait_ready(self, deadline: float) -> bool:
        """True once every child started so far is ready; False if a stop was requested first."""
        with self._health_client() as client:
            while pending := [c for c in self.children if not c.healthy]:
                self._check_children()
                self._poll(client, pending, "healthy")
                late = [c for c in pending if not c.healthy]
                if late and time.monotonic() > deadline:
                    names = ", ".join(c.service.name for c in late)
                    tails = "".join(c.tail_text() for c in late)
                    raise _StackFailed(f"timed out waiting for {names} to answer 200 on /healthz" + tails)
                if late and self._pause():
                    return False
        return not self.stop_signal

    def _publish(self) -> None:
        try:
            info = {**self.describe()}
        except Exception as exc:
            raise _StackFailed(f"could not describe the running stack: {exc!r}") from exc
        info.update({s.stack_key: s.base_url for s in self.services if s.stack_key})
        info["ca_bundle"] = str(self.ca_bundle)
        info["runner_pid"] = os.getpid()
        self.stack_file.parent.mkdir(parents=True, exist_ok=True)
        write_private(self.stack_file, (json.dumps(info, indent=2, sort_keys=True, default=str) + "\n").encode())
        lines = ["", "zt: the stack is ready."]
        lines += [f"  {s.stack_key:<18} {s.base_url}" for s in self.services if s.stack_key]
        lines += self.summary(info) if self.summary else []
        lines.append(f"  {'CA bundle':<18} {self.ca_bundle}")
        lines.append(f"  {'details':<18} {self.stack_file}")
        lines.append(f"zt: press Ctrl-C to stop (or: kill -TERM {os.getpid()}).")
        self.log("\n".join(lines))

    def _stop_children(self) -> None:
        if not self.children:
            return
        self.log("zt: stopping the stack...")
        for child in self.children:
            _signal_group(child.proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + self.stop_timeout
        for child in self.children:
            try:
                child.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.log(f"zt: {child.service.name} did not stop within {self.stop_timeout:g} s; killing it")
        for child in self.children:
            # Also after a clean exit: it reaps grandchildren that ignored SIGTERM or outlived the leader.
            _signal_group(child.proc.pid, signal.SIGKILL)
        for child in self.children:
            child.proc.wait()
            child.settle()
        self.log("zt: stopped.")


def _healthy(client: httpx.Client, url: str) -> bool:
    with contextlib.suppress(httpx.HTTPError):
        return client.get(url).status_code == 200
    return False


def _signal_group(pgid: int, signum: int) -> None:
    # The group may already be gone (some systems answer EPERM for a group left with only zombies).
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)
