"""A pool of evaluator actors on the Ray cluster that completes every task even when actors or nodes die."""
from __future__ import annotations

import logging
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Deque, Dict, List, Optional, Sequence, Set, Tuple

import ray
from ray.exceptions import ObjectLostError, RayActorError

from evaluator.config import EvaluatorConfig
from evaluator.allreduce import Rendezvous
from evaluator.worker import Evaluator, RewardResult, RewardTask, RoundTraining, SharedState, TrainResult, TrainTask

log = logging.getLogger(__name__)

# A lost actor (ActorDiedError, ActorUnavailableError), or a finished result lost with its node.
LOST = (RayActorError, ObjectLostError)
# Actor states in which an actor runs nothing: a call sent to it waits for a restart that needs
# free resources, which may never come once its node is gone.
NOT_RUNNING = ("RESTARTING", "DEAD")

Job = Tuple[int, int]  # (task index, attempt)
Running = Tuple[int, int, int]  # (task index, attempt, actor)


@dataclass
class _Work:
    """The tasks of one pool call: each actor's own queue, the orphans of lost actors, the idle
    actors, what runs where, the results in task order and what each task's earlier attempts met."""

    own: List[Deque[Job]]
    orphans: Deque[Job]
    idle: Deque[int]
    running: Dict[Any, Running] = field(default_factory=dict)  # ref -> (task, attempt, actor)
    results: List[Any] = field(default_factory=list)
    history: Dict[int, List[str]] = field(default_factory=dict)  # task -> what its earlier attempts met
    on_result: Optional[Callable[[Any], Any]] = None  # called with each task's final result as it comes

    @classmethod
    def plan(cls, num_tasks: int, num_actors: int, live: Sequence[int]) -> "_Work":
        """Task i to actor i mod W; the share of an actor that is not live goes to the orphans."""
        work = cls([deque() for _ in range(num_actors)], deque(), deque(live), results=[None] * num_tasks)
        for index in range(num_tasks):
            actor = index % num_actors
            (work.own[actor] if actor in live else work.orphans).append((index, 1))
        return work

    def pending(self) -> bool:
        return bool(any(self.own) or self.orphans or self.running)

    def assign(self) -> List[Tuple[int, Job]]:
        """(actor, job) for every idle actor with work: its own queue first, then the orphans."""
        assigned = []
        for actor in list(self.idle):
            queue = self.own[actor] or self.orphans
            if queue:
                self.idle.remove(actor)
                assigned.append((actor, queue.popleft()))
        return assigned


class WorkerPool:
    """``num_workers`` Evaluator actors with the config's CPUs and (fractional) GPUs each.

    Ray restarts a dead actor (``max_restarts=-1``) wherever resources allow. Until a lost actor
    answers a ping again the pool gives it nothing, and the task it was running and its queue go to
    the live actors, so rounds go on with what is left of the cluster; each result says how many
    attempts it took, and ``take_events()`` what happened. An actor is lost when a call to it fails,
    or when Ray reports it restarting or dead while it holds a task (its node was removed). With no
    live actor for ``revive_timeout_s`` (the autoscaler did not bring a node back) the pool raises.
    A reward whose computation raised (out of memory, say) is computed again by the next free actor,
    up to ``evaluator.score_attempts`` tries; one that still fails comes back with status "failed"
    and no reward, its note saying what each try met.
    ``actor_class``: an :class:`Evaluator` subclass (tests use one that signals when a task starts).
    """

    def __init__(self, config: EvaluatorConfig, num_workers: int, max_attempts: int = 5,
                 revive_timeout_s: float = 1800.0, poll_s: float = 1.0, actor_class: type = Evaluator) -> None:
        remote = ray.remote(actor_class).options(num_cpus=config.num_cpus, num_gpus=config.num_gpus,
                                               max_restarts=-1, max_task_retries=0)
        self.actors = [remote.remote(config, index) for index in range(num_workers)]
        self.max_attempts = max_attempts
        self.score_attempts = config.score_attempts  # tries of a reward that fails (the worker raised)
        self.collective_timeout_s = config.collective_timeout_s
        self.revive_timeout_s, self.poll_s = revive_timeout_s, poll_s
        self.events: List[str] = []
        # Lost actors, kept across calls until they answer: a ping in flight, or a failed ping to repeat
        # later (a restart can take as long as the autoscaler needs for a new node).
        self.pings: Dict[Any, int] = {}  # ping ref -> actor
        self.next_ping: Dict[int, float] = {}  # actor -> when to ping it again (time.monotonic)
        self.failed_pings: Dict[int, int] = {}
        self.gone: Set[int] = set()  # actors Ray reports dead for good: never used again

    def latency_table(self, batches: List[int]) -> Dict[str, Any]:
        """The per-op latency table, measured by one live worker (on the device the search runs on)."""
        return ray.get(self.actors[self._wait_for_live("latency_table")[0]].latency_table.remote(batches))

    def network_shape(self) -> Dict[str, Any]:
        """What a latency table must have been measured for to predict this search's network."""
        return ray.get(self.actors[self._wait_for_live("network_shape")[0]].network_shape.remote())

    def initial_state(self) -> SharedState:
        return self._run("initial_state", None, [None])[0]

    def train(self, state: SharedState, tasks: Sequence[TrainTask]) -> List[TrainResult]:
        return self._run("train", ray.put(state), tasks)

    def train_together(self, state: SharedState, task: RoundTraining) -> List[TrainResult]:
        """The round's shards, trained in step by the live actors (evaluator/allreduce.py); per shard.

        Shard s goes to the s mod world-th live actor. When an actor is lost, the survivors' process
        group breaks: the round starts again from ``state`` on the actors still live, which take the
        lost one's shards too, so the round gives the same weights, later.
        """
        shared = ray.put(state)
        for attempt in range(1, self.max_attempts + 1):
            live = self._wait_for_live("train")[:len(task.seeds)]
            try:
                host, port = ray.get(self.actors[live[0]].rendezvous_address.remote())
            except LOST as err:
                self._lose_actor(live[0], f"worker {live[0]} was lost before training: {type(err).__name__}", err)
                continue
            calls = {}
            for rank, actor in enumerate(live):
                shards = list(range(rank, len(task.seeds), len(live)))
                rendezvous = Rendezvous(host, port, rank, len(live), self.collective_timeout_s)
                calls[self.actors[actor].train_shards.remote(shared, task, shards, rendezvous)] = actor
            results = self._gather_round(calls, attempt)
            if results is not None:
                return sorted((r for batch in results for r in batch), key=lambda r: r.shard)
        raise RuntimeError(f"the round's training failed {self.max_attempts} times; giving up")

    def _gather_round(self, calls: Dict[Any, int], attempt: int) -> Optional[List[List[TrainResult]]]:
        """Every actor's results, or None when any call failed (after all of them have ended)."""
        results, failed = [], False

        def lost(actor: int) -> str:
            return f"worker {actor} was lost during training (attempt {attempt}): "

        while calls:
            ready, _ = ray.wait(list(calls), num_returns=1, timeout=self.poll_s)
            if not ready:
                for ref, state in self._stalled({ref: (0, attempt, a) for ref, a in calls.items()}):
                    actor = calls.pop(ref)
                    _cancel(ref)
                    self._lose_actor(actor, f"{lost(actor)}Ray reports it {state}")
                    failed = True
                continue
            actor = calls.pop(ready[0])
            try:
                results.append(ray.get(ready[0]))
            except LOST as err:
                self._lose_actor(actor, f"{lost(actor)}{type(err).__name__}", err)
                failed = True
            except ray.exceptions.RayTaskError as err:  # its process group broke: a peer was lost
                self._note(f"worker {actor}'s training stopped (attempt {attempt}): {_last_line(err)}")
                failed = True
        if failed:
            self._note("the round's training starts again on the live workers")
        return None if failed else results

    def _lose_actor(self, actor: int, message: str, err: Optional[BaseException] = None) -> None:
        """Note the loss and ping the actor: the pool gives it nothing until it answers."""
        _refuse_failed_start(actor, err)
        self._note(message)
        self.pings[self.actors[actor].ping.remote()] = actor

    def _wait_for_live(self, method: str) -> List[int]:
        """The live actors, waiting (within revive_timeout_s) for a lost one to answer when none is."""
        alone_since = None
        while True:
            self._collect_pings(timeout=0)
            live = self.live()
            if live:
                return live
            alone_since = alone_since or time.monotonic()
            self._check_revival(method, alone_since)
            if self.pings:
                self._collect_pings(timeout=self.poll_s)
            else:  # every lost actor waits for its next ping
                time.sleep(self.poll_s)

    def score(self, weights: Dict[str, Any], tasks: Sequence[RewardTask],
              on_result: Optional[Callable[[RewardResult], Any]] = None) -> List[RewardResult]:
        """Each task's score, in task order; ``on_result`` gets each one as it is final (a progress
        bar, a partial result saved)."""
        each = None if on_result is None else (lambda batch: on_result(batch[0]))  # a task is a batch of one
        results = self._run("score", ray.put(weights), [[task] for task in tasks], each)
        return [batch[0] for batch in results]

    def take_events(self) -> List[str]:
        events, self.events = self.events, []
        return events

    def live(self) -> List[int]:
        """Actors the pool sends tasks to: neither waiting for a restart nor given up."""
        lost = set(self.pings.values()) | set(self.next_ping) | self.gone
        return [actor for actor in range(len(self.actors)) if actor not in lost]

    def _run(self, method: str, shared: Any, tasks: Sequence[Any],
             on_result: Optional[Callable[[Any], Any]] = None) -> List[Any]:
        """Run every task; results in task order.

        Task i goes to actor i mod W, so which worker computed what is the same in every run
        without failures; the tasks of a lost actor go to whichever live actor is free.
        """
        self._collect_pings(timeout=0)
        work = _Work.plan(len(tasks), len(self.actors), self.live())
        work.on_result = on_result
        alone_since: Optional[float] = None  # since when no task runs because no actor is live
        while work.pending():
            self._ping_again()
            for actor, (index, attempt) in work.assign():
                call = getattr(self.actors[actor], method)
                ref = call.remote() if shared is None else call.remote(shared, tasks[index])
                work.running[ref] = (index, attempt, actor)
            alone_since = None if work.running else alone_since or time.monotonic()
            if alone_since is not None:
                self._check_revival(method, alone_since)
            self._next_event(work, method)
        return work.results

    def _next_event(self, work: _Work, method: str) -> None:
        """Wait for one result or ping (at most poll_s) and act on it; on a timeout, look for
        running tasks whose actor Ray reports as restarting or dead: they would wait forever."""
        if not work.running and not self.pings:  # every lost actor waits for its next ping
            time.sleep(self.poll_s)
            return
        ready, _ = ray.wait(list(work.running) + list(self.pings), num_returns=1, timeout=self.poll_s)
        if not ready:
            for ref, state in self._stalled(work.running):
                index, attempt, actor = work.running.pop(ref)
                _cancel(ref)  # queued for a restart: when one comes it must not run for nothing
                self._lose(work, actor, (index, attempt), f"worker {actor} was lost during {method} task {index} "
                                                          f"(attempt {attempt}): Ray reports it {state}")
            return
        ref = ready[0]
        if ref in self.pings:
            work.idle.extend(self._answer(ref))
            return
        index, attempt, actor = work.running.pop(ref)
        try:
            result = ray.get(ref)
        except LOST as err:
            self._lose(work, actor, (index, attempt), f"worker {actor} was lost during {method} task {index} "
                                                      f"(attempt {attempt}): {type(err).__name__}", err)
            return
        work.idle.append(actor)
        failure = _failure(result)
        if failure and attempt < self.score_attempts:  # another try, by the next free worker
            work.history.setdefault(index, []).append(f"attempt {attempt} on worker {actor}: {failure}")
            self._note(f"{method} task {index} failed on worker {actor} (attempt {attempt} of "
                       f"{self.score_attempts}): {failure}")
            work.orphans.append((index, attempt + 1))
            return
        work.results[index] = _mark_attempts(result, attempt, work.history.get(index, []))
        if work.on_result is not None:
            work.on_result(work.results[index])

    def _lose(self, work: _Work, actor: int, job: Job, message: str, err: Optional[BaseException] = None) -> None:
        """The actor's running task and its queue go to the live actors; a ping says when it is back."""
        self._lose_actor(actor, message + "; its tasks go to the next free worker", err)
        index, attempt = job
        if attempt >= self.max_attempts:
            raise RuntimeError(f"task {index} failed {attempt} times; giving up") from err
        work.history.setdefault(index, []).append(f"attempt {attempt} on worker {actor}: the worker was lost")
        work.orphans.append((index, attempt + 1))
        work.orphans.extend(work.own[actor])
        work.own[actor].clear()

    def _answer(self, ref: Any) -> List[int]:
        """A ping that finished: [the actor] if it is back, [] if not (pinged again later, or gone)."""
        actor = self.pings.pop(ref)
        try:
            ray.get(ref)
        except LOST as err:
            _refuse_failed_start(actor, err)
            if _actor_state(self.actors[actor]) == "DEAD":
                self.gone.add(actor)
                self._note(f"worker {actor} is dead for good (Ray will not restart it); going on without it")
            else:
                failures = self.failed_pings[actor] = self.failed_pings.get(actor, 0) + 1
                self.next_ping[actor] = time.monotonic() + min(60.0, self.poll_s * 2 ** failures)
            return []
        self.failed_pings.pop(actor, None)
        self._note(f"worker {actor} is back")
        return [actor]

    def _ping_again(self) -> None:
        now = time.monotonic()
        for actor, when in list(self.next_ping.items()):
            if when <= now:
                del self.next_ping[actor]
                self.pings[self.actors[actor].ping.remote()] = actor

    def _collect_pings(self, timeout: float) -> None:
        """Take in the answers of lost actors that came back since the last call."""
        self._ping_again()
        if self.pings:
            ready, _ = ray.wait(list(self.pings), num_returns=len(self.pings), timeout=timeout)
            for ref in ready:
                self._answer(ref)

    def _check_revival(self, method: str, alone_since: float) -> None:
        """No task runs: every actor is lost. Wait for one to come back, within revive_timeout_s."""
        if len(self.gone) == len(self.actors):
            raise RuntimeError(f"{method}: no evaluator worker left (all {len(self.actors)} dead for good)")
        waited = time.monotonic() - alone_since
        if waited > self.revive_timeout_s:
            raise RuntimeError(f"{method}: no evaluator worker alive for {waited:.0f} s (all {len(self.actors)} "
                               "lost and none restarted: not enough free resources in the cluster?)")

    def _stalled(self, running: Dict[Any, Running]) -> List[Tuple[Any, str]]:
        """(ref, actor state) of the running tasks whose actor Ray reports as restarting or dead."""
        states = [(ref, _actor_state(self.actors[actor])) for ref, (_, _, actor) in running.items()]
        return [(ref, state) for ref, state in states if state in NOT_RUNNING]

    def _note(self, message: str) -> None:
        log.warning(message)
        self.events.append(message)

    def shutdown(self) -> None:
        for actor in self.actors:
            ray.kill(actor, no_restart=True)


class WorkerStartError(ValueError):
    """An evaluator whose constructor raised (its dataset cannot be loaded on its node, say): every
    worker would fail the same way, so the search stops with the worker's own one-line reason."""


def _refuse_failed_start(actor: int, err: Optional[BaseException]) -> None:
    """Raise :class:`WorkerStartError` when ``err`` says the actor's constructor failed."""
    if isinstance(err, RayActorError) and err.actor_init_failed:
        raise WorkerStartError(f"evaluator worker {actor} could not start: {_last_line(err)}")


def _actor_state(handle: Any) -> str:
    """The actor's state in the GCS ("ALIVE", "RESTARTING", "DEAD", ...), "UNKNOWN" if it cannot be read.

    Read from the GCS directly (ray._private.state): the public state API needs the dashboard,
    which a search started with include_dashboard=False does not have.
    """
    try:
        return ray._private.state.actors(actor_id=handle._actor_id.hex()).get("State", "UNKNOWN")
    except Exception:  # any failure to read the state means: keep waiting, as without this check
        return "UNKNOWN"


def _last_line(err: BaseException) -> str:
    """The last non-empty line of a remote error (its exception), which says what went wrong."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return lines[-1] if lines else type(err).__name__


def _cancel(ref: Any) -> None:
    try:
        ray.cancel(ref)
    except Exception as err:  # a task that cannot be cancelled any more is only wasted work
        log.info("could not cancel a task of a lost worker: %s", err)


def _rewards(result: Any) -> List[RewardResult]:
    """The rewards in a task's result (a score task returns a list of them; other tasks none)."""
    return [item for item in (result if isinstance(result, list) else [result]) if isinstance(item, RewardResult)]


def _failure(result: Any) -> str:
    """Why a task's reward failed (the worker's note), "" when every reward in it was measured."""
    failed = [item for item in _rewards(result) if item.status == "failed"]
    return ("; ".join(failed[0].notes) or "failed") if failed else ""


def _mark_attempts(result: Any, attempt: int, history: Sequence[str]) -> Any:
    """The attempts a result took, and what the earlier ones met, on its rewards."""
    for item in _rewards(result):
        item.attempts = attempt
        item.notes[:0] = history
    return result
