"""Drain on Auto Scaling scale-in: watch IMDS `target-lifecycle-state`, stop polling, release the hook.

The decisions are `ccc_common.domain.drain.drain_step` (shared with the local fleet supervisor); this
module only performs them: STOP_POLLING -> `agent.stop()`, HEARTBEAT ->
RecordLifecycleActionHeartbeat, COMPLETE_LIFECYCLE -> CompleteLifecycleAction(CONTINUE).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from ccc_common.domain.drain import DrainAction, DrainPhase, DrainSettings, DrainState, drain_step
from ccc_core.logs import log_event
from enclave_worker.parent.agent import ParentAgent
from enclave_worker.parent.imds import ImdsClient

_LOG = logging.getLogger("ccc.parent.lifecycle")


class LifecycleWatcher:
    def __init__(self, agent: ParentAgent, imds: ImdsClient, autoscaling: Any, *, group_name: str, hook_name: str,
                 poll_s: float, settings: DrainSettings) -> None:
        self._agent = agent
        self._imds = imds
        self._autoscaling = autoscaling
        self._group = group_name
        self._hook = hook_name
        self._poll_s = poll_s
        self._settings = settings
        self._state = DrainState()
        self._instance_id: str | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lifecycle-watcher", daemon=True)

    @property
    def phase(self) -> DrainPhase:
        return self._state.phase

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(self._poll_s + 5)

    def _run(self) -> None:
        while not self._stop.wait(self._poll_s):
            try:
                target = self._imds.target_lifecycle_state()
            except Exception as exc:  # IMDS hiccup: look again next tick
                log_event(_LOG, logging.WARNING, "lifecycle state unavailable", error_type=type(exc).__name__)
                continue
            self.step(target, self._agent.in_flight)
            if self._state.phase is DrainPhase.RELEASED:
                return

    def step(self, target_state: str | None, in_flight: int) -> None:
        with self._lock:
            self._state, actions = drain_step(self._state, target_state, in_flight, time.monotonic(), self._settings)
        for action in actions:
            self._perform(action, target_state, in_flight)

    def finish(self) -> None:
        """After the agent has drained: release the instance if a scale-in started the drain."""
        if self._state.phase is not DrainPhase.DRAINING:
            return
        with self._lock:
            self._state, actions = drain_step(self._state, "Terminated", 0, time.monotonic(), self._settings)
        for action in actions:
            self._perform(action, "Terminated", 0)

    def _perform(self, action: DrainAction, target_state: str | None, in_flight: int) -> None:
        try:
            if action is DrainAction.STOP_POLLING:
                log_event(_LOG, logging.INFO, "scale-in: draining", target_state=target_state, in_flight=in_flight)
                self._agent.stop()
                return
            params = {"LifecycleHookName": self._hook, "AutoScalingGroupName": self._group,
                      "InstanceId": self._instance()}
            if action is DrainAction.HEARTBEAT:
                self._autoscaling.record_lifecycle_action_heartbeat(**params)
            elif action is DrainAction.COMPLETE_LIFECYCLE:
                self._autoscaling.complete_lifecycle_action(**params, LifecycleActionResult="CONTINUE")
                log_event(_LOG, logging.INFO, "lifecycle action completed", in_flight=in_flight)
        except Exception as exc:  # the hook's own timeout still releases the instance eventually
            log_event(_LOG, logging.WARNING, "lifecycle action failed", action=action.value,
                      error_type=type(exc).__name__)

    def _instance(self) -> str:
        if self._instance_id is None:
            self._instance_id = self._imds.instance_id()
        return self._instance_id
