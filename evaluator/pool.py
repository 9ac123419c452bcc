"""A pool of evaluator actors on the Ray cluster that completes every task even when actors die."""
from __future__ import annotations

import logging
from collections import deque
from typing import Any, Deque, Dict, List, Sequence, Tuple

import ray
from ray.exceptions import ActorDiedError, ActorUnavailableError, RayActorError

from evaluator.config import EvaluatorConfig
from evaluator.worker import Evaluator, RewardResult, RewardTask, SharedState, TrainResult, TrainTask

log = logging.getLogger(__name__)
ACTOR_LOST = (RayActorError, ActorDiedError, ActorUnavailableError)


class WorkerPool:
    """``num_workers`` Evaluator actors with the config's CPUs and (fractional) GPUs each.

    Ray restarts a dead actor (``max_restarts=-1``); the pool sends the task it was running to
    the next free actor, so a round completes with every result, each marked with the number of
    attempts it took, and ``events`` says what happened.
    """

    def __init__(self, config: EvaluatorConfig, num_workers: int, max_attempts: int = 5) -> None:
        remote = ray.remote(Evaluator).options(num_cpus=config.num_cpus, num_gpus=config.num_gpus,
                                               max_restarts=-1, max_task_retries=0)
        self.actors = [remote.remote(config, index) for index in range(num_workers)]
        self.max_attempts = max_attempts
        self.events: List[str] = []

    def initial_state(self) -> SharedState:
        return self._run("initial_state", None, [None])[0]

    def train(self, state: SharedState, tasks: Sequence[TrainTask]) -> List[TrainResult]:
        return self._run("train", ray.put(state), tasks)

    def score(self, weights: Dict[str, Any], tasks: Sequence[RewardTask]) -> List[RewardResult]:
        results = self._run("score", ray.put(weights), [[task] for task in tasks])
        return [batch[0] for batch in results]

    def take_events(self) -> List[str]:
        events, self.events = self.events, []
        return events

    def _run(self, method: str, shared: Any, tasks: Sequence[Any]) -> List[Any]:
        """Run every task; results in task order.

        Task i goes to actor i mod W, so which worker computed what is the same in every run; the
        tasks of an actor that is lost (the running one and its queue) go to whichever actor is free.
        """
        own: List[Deque[Tuple[int, int]]] = [deque() for _ in self.actors]
        for index in range(len(tasks)):
            own[index % len(self.actors)].append((index, 1))
        orphans: Deque[Tuple[int, int]] = deque()
        idle: Deque[int] = deque(range(len(self.actors)))
        running: Dict[Any, Tuple[int, int, int]] = {}  # ref -> (task, attempt, actor)
        reviving: Dict[Any, int] = {}  # ping ref -> actor being restarted by Ray
        results: List[Any] = [None] * len(tasks)
        while any(own) or orphans or running:
            for actor in list(idle):
                queue = own[actor] or orphans
                if queue:
                    idle.remove(actor)
                    index, attempt = queue.popleft()
                    call = getattr(self.actors[actor], method)
                    ref = call.remote() if shared is None else call.remote(shared, tasks[index])
                    running[ref] = (index, attempt, actor)
            ready, _ = ray.wait(list(running) + list(reviving), num_returns=1)
            ref = ready[0]
            if ref in reviving:
                actor = reviving.pop(ref)
                try:
                    ray.get(ref)
                    idle.append(actor)
                except ACTOR_LOST:
                    reviving[self.actors[actor].ping.remote()] = actor
                continue
            index, attempt, actor = running.pop(ref)
            try:
                results[index] = _mark_attempts(ray.get(ref), attempt)
                idle.append(actor)
            except ACTOR_LOST as err:
                self._note(f"worker {actor} was lost during {method} task {index} (attempt {attempt}): "
                           f"{type(err).__name__}; its tasks go to the next free worker")
                if attempt >= self.max_attempts:
                    raise RuntimeError(f"{method} task {index} failed {attempt} times; giving up") from err
                orphans.append((index, attempt + 1))
                orphans.extend(own[actor])
                own[actor].clear()
                reviving[self.actors[actor].ping.remote()] = actor
        return results

    def _note(self, message: str) -> None:
        log.warning(message)
        self.events.append(message)

    def shutdown(self) -> None:
        for actor in self.actors:
            ray.kill(actor, no_restart=True)


def _mark_attempts(result: Any, attempt: int) -> Any:
    for item in result if isinstance(result, list) else [result]:
        if isinstance(item, RewardResult):
            item.attempts = attempt
            if attempt > 1:
                item.notes.append(f"recomputed after {attempt - 1} lost worker(s)")
    return result
