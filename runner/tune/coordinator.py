"""The driver side of a sweep: hands trials to executor slots, relays pruning, collects outcomes.

Executors call it over XML-RPC (standard library, no extra dependency): each slot task
loops ``next_trial`` -> train -> ``report`` every epoch (the answer says whether to
prune) -> ``finish``. With a model-based sampler (TPE), Optuna's ask happens when a
slot is free, so it always sees every finished trial, and the cluster never waits on a
batch. With a ``cost`` (samplers that ignore results: random, grid) every trial is
drawn at the start and the longest estimated runs first, so the sweep does not end
waiting on one long trial. Each served job has its own random token, which only its slot
tasks get: a call without it (a stranger on the network, a slot of a dead job) is refused
and counted.

A trial cut off by the infrastructure (its task retried, its Spark job dead) is *lost*,
not failed: Optuna closes it as FAIL and its params are asked again under a new number
(the user attribute ``reasks`` names the lost one); ``trials.jsonl`` never records it.
A finished trial is recorded (``on_finish``) before Optuna is told, so a crash between the
two leaves it RUNNING in the journal with its outcome on record, for resume to close.
"""

from __future__ import annotations

import hmac
import json
import secrets
import threading
import xmlrpc.client
from collections.abc import Callable
from dataclasses import dataclass, field
from socketserver import ThreadingMixIn
from typing import Any
from xmlrpc.server import SimpleXMLRPCRequestHandler, SimpleXMLRPCServer

from runner.train.trial import TrialOutcome
from runner.tune.trial_cost import TrialCost

_NO_MORE_TRIALS = ""
REASKS = "reasks"  # user attribute of a re-asked trial: the number of the trial it replaces
_POLL_S = 0.02  # how soon ``close`` returns: serve_forever checks for shutdown this often


class _QuietHandler(SimpleXMLRPCRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: a slot's calls reuse one connection

    def log_message(self, *args: Any) -> None:  # no per-request lines on the terminal
        pass


class _Server(ThreadingMixIn, SimpleXMLRPCServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A slot cut off mid-request (its task killed, Ctrl-C): its trial is lost, no traceback."""


@dataclass
class Coordinator:
    """Owns the Optuna study while the sweep runs; every method is thread-safe."""

    study: Any
    space: dict[str, Any]
    n_trials: int
    metric: str
    make_spec: Callable[[int, dict[str, Any]], dict[str, Any]]
    on_finish: Callable[[TrialOutcome, dict[str, Any]], None]
    on_start: Callable[[int, dict[str, Any]], None] = lambda number, params: None
    on_lost: Callable[[int, int], None] = lambda lost, reasked_as: None
    pruning: bool = False
    cost: TrialCost | None = None  # set: draw all trials now, hand out the longest first
    started: int = 0
    refused: int = 0  # calls without the serving job's token
    storage_error: OSError | None = None  # the run dir could not be written: no more trials
    outcomes: dict[int, TrialOutcome] = field(default_factory=dict)
    params: dict[int, dict[str, Any]] = field(default_factory=dict)
    _trials: dict[int, Any] = field(default_factory=dict)
    _slot_trial: dict[int, tuple[int, int]] = field(default_factory=dict)  # slot -> (attempt, n)
    _lost: set[int] = field(default_factory=set)
    _reasks: dict[int, list[int]] = field(default_factory=dict)  # re-asked -> lost, in order
    _drawn: list[Any] = field(default_factory=list)  # asked, not handed out yet (with cost)
    _drawing: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def next_trial(self, slot: int, attempt: int) -> str:
        """The next trial's spec as JSON, or "" when the sweep has handed out all trials.

        A new attempt of a slot's task means Spark retried it (an executor was lost):
        the trial that slot was running is lost.
        """
        with self._lock:
            held = self._slot_trial.pop(slot, None)
            if held is not None and held[0] != attempt and held[1] not in self.outcomes:
                self._lose(held[1])
            if self.started >= self.n_trials or self.storage_error is not None:
                return _NO_MORE_TRIALS
            trial = self._ask()
            self.started += 1
            self._trials[trial.number] = trial
            self.params[trial.number] = dict(trial.params)
            self._slot_trial[slot] = (attempt, trial.number)
            if REASKS in trial.user_attrs:
                lost = trial.user_attrs[REASKS]  # itself maybe a re-ask that was lost too
                self._reasks[trial.number] = [*self._reasks.get(lost, []), lost]
                self.on_lost(trial.user_attrs[REASKS], trial.number)
            self.on_start(trial.number, dict(trial.params))
            return json.dumps(self.make_spec(trial.number, dict(trial.params)))

    def _ask(self) -> Any:
        """The next trial: asked now, or, with a cost, the longest of all still to run."""
        if self.cost is None:
            return self.study.ask(self.space)
        if self._drawing is not None:
            self._drawing.join()  # only the first hand-out can find it still drawing
        self._draw()  # a lost trial's params, asked again
        cost = self.cost
        longest = max(self._drawn, key=lambda trial: cost.seconds(trial.params))
        self._drawn.remove(longest)
        return longest

    def _draw(self) -> None:
        """Ask every trial still to run, and estimate each one's length."""
        assert self.cost is not None
        while len(self._drawn) < self.n_trials - self.started:
            trial = self.study.ask(self.space)
            self.cost.seconds(trial.params)  # its work counted now, not while a slot waits
            self._drawn.append(trial)

    def report(self, number: int, step: int, value: float) -> bool:
        """Record an epoch's metric; True tells the trial to stop (pruned)."""
        if not self.pruning:
            return False
        with self._lock:
            if number in self._lost:
                return True  # a straggler of a dead job: stop it
            trial = self._trials[number]
            trial.report(value, step)
            return bool(trial.should_prune())

    def finish(self, record: str, weights: xmlrpc.client.Binary) -> bool:
        """Take a trial's outcome and tell Optuna; False: the trial was lost meanwhile."""
        outcome = TrialOutcome(**json.loads(record))
        outcome.weights = weights.data
        outcome.reasks = self._reasks.get(outcome.number, [])
        with self._lock:
            if outcome.number in self._lost:
                return False
            trial = self._trials[outcome.number]
            value = outcome.metrics.get(self.metric)
            if outcome.state == "COMPLETE" and value is None:
                outcome.state = "FAIL"
                outcome.error = f"search.metric: the trial reported no {self.metric!r}"
            self.outcomes[outcome.number] = outcome
            for slot, (_, number) in list(self._slot_trial.items()):
                if number == outcome.number:
                    del self._slot_trial[slot]
            self.on_finish(outcome, self.params[outcome.number])  # recorded before told
            tell(self.study, trial, outcome, self.metric)
            if outcome.state == "COMPLETE" and self.cost is not None:
                self.cost.observe(self.params[outcome.number], outcome.duration_s)
        return True

    def lose_unfinished(self) -> list[int]:
        """After a Spark job ended: every trial handed out without an outcome is lost."""
        with self._lock:
            lost = [n for n in self._trials if n not in self.outcomes and n not in self._lost]
            for number in lost:
                self._lose(number)
            self._slot_trial.clear()
            return lost

    def _lose(self, number: int) -> None:
        """Close a cut-off trial as FAIL in Optuna and ask its params again."""
        import optuna

        self.study.tell(self._trials[number], state=optuna.trial.TrialState.FAIL)
        self.study.enqueue_trial(self.params[number], user_attrs={REASKS: number})
        self._lost.add(number)
        self.started -= 1

    def serve(self, host: str) -> "RunningServer":
        """Start the XML-RPC server on an ephemeral port in a daemon thread. With a cost,
        the trials are drawn meanwhile: Spark takes ~0.2 s to start the slots here."""
        if self.cost is not None:
            self._drawing = threading.Thread(target=self._draw, daemon=True)
            self._drawing.start()
        server = _Server(
            (host, 0), requestHandler=_QuietHandler, allow_none=True, logRequests=False
        )
        token = secrets.token_urlsafe(24)
        for method in (self.next_trial, self.report, self.finish):
            server.register_function(self._guarded(token, method), method.__name__)
        thread = threading.Thread(target=server.serve_forever, args=(_POLL_S,), daemon=True)
        thread.start()
        return RunningServer(server, f"http://{host}:{server.server_address[1]}/", token)

    def _guarded(self, token: str, method: Callable[..., Any]) -> Callable[..., Any]:
        """``method`` for callers that send ``token`` first; any other call is refused.
        A record that cannot be written (a full or read-only run dir) is kept for the sweep
        to raise, and no trial is handed out after it."""

        def call(*args: Any) -> Any:
            if not args or not hmac.compare_digest(str(args[0]).encode(), token.encode()):
                with self._lock:
                    self.refused += 1
                raise PermissionError("the trial endpoint needs the sweep's token")
            try:
                return method(*args[1:])
            except OSError as err:
                with self._lock:
                    self.storage_error = self.storage_error or err
                raise

        return call


def tell(study: Any, trial: Any, outcome: TrialOutcome, metric: str) -> None:
    """Tell Optuna a finished trial's outcome: its value when complete, else its state."""
    import optuna

    if outcome.state == "COMPLETE":
        study.tell(trial, outcome.metrics[metric])
    else:
        study.tell(trial, state=getattr(optuna.trial.TrialState, outcome.state))


@dataclass
class RunningServer:
    server: _Server
    url: str
    token: str  # the first argument of every call

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
