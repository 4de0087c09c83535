"""The scheduler: moves due accounts of running campaigns into the job stream, and notices completion.

Every worker runs it; a short Redis lease makes one of them the leader at a time. Enqueueing twice is
harmless (jobs are idempotent by their attempt key), so a leader that dies mid-tick loses nothing."""

from __future__ import annotations

import time

from duebot.campaigns.control import PREFIX, RUNNING, Control, Job
from duebot.campaigns.repo import CampaignRepo

LEADER = f"{PREFIX}:scheduler"


class Scheduler:
    def __init__(self, repo: CampaignRepo, control: Control, lease: float = 5.0) -> None:
        self.repo, self.control, self.lease = repo, control, lease

    def lead(self, name: str) -> bool:
        client = self.control.client
        if client.set(LEADER, name, nx=True, px=int(self.lease * 1000)):
            return True
        if (client.get(LEADER) or b"").decode() == name:
            client.pexpire(LEADER, int(self.lease * 1000))
            return True
        return False

    def tick(self, name: str, force: bool = False) -> int:
        if not force and not self.lead(name):
            return 0
        enqueued = 0
        now = time.time()
        for campaign in self.repo.running():
            if self.control.state(campaign.id) != RUNNING:
                continue
            while True:
                due = self.repo.take_due(campaign.id, now)
                enqueued += self.control.enqueue(Job(campaign.id, account_id, step) for account_id, step in due)
                if len(due) < 5000:
                    break
            if self.repo.remaining(campaign.id) == 0 and self.repo.in_flight(campaign.id) == 0:
                self.repo.set_status(campaign.id, "completed", finished_at=time.time())
                self.control.set_state(campaign.id, "completed")
        return enqueued
