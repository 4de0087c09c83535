"""Prometheus metrics for campaigns, read from Redis and the store at scrape time: workers run in other
processes (and machines), so the counters they keep in Redis are the single source of truth."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from duebot.campaigns.service import Campaigns


class CampaignCollector(Collector):
    def __init__(self, campaigns: Campaigns) -> None:
        self.campaigns = campaigns

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        c = self.campaigns
        attempts = CounterMetricFamily("duebot_campaign_attempts", "Contact attempts by outcome",
                                       labels=["campaign", "step", "channel", "outcome"])
        denials = CounterMetricFamily("duebot_campaign_gate_denials", "Contacts the gate refused, by reason",
                                      labels=["campaign", "step", "channel", "reason"])
        accounts = GaugeMetricFamily("duebot_campaign_accounts", "Accounts by campaign state",
                                     labels=["campaign", "status", "state"])
        for campaign in c.repo.all():
            for (step, channel, what), n in c.control.counts(campaign.id).items():
                kind, _, value = what.partition(":")
                if kind == "outcome":
                    attempts.add_metric([campaign.id, step, channel, value], n)
                elif kind == "denied":
                    denials.add_metric([campaign.id, step, channel, value], n)
            for state, n in c.repo.account_states(campaign.id).items():
                accounts.add_metric([campaign.id, campaign.status, state], n)
        backlog = c.control.backlog()
        queue = GaugeMetricFamily("duebot_campaign_queue_jobs", "Jobs in the stream", labels=["kind"])
        queue.add_metric(["waiting"], backlog["waiting"])
        queue.add_metric(["pending"], backlog["pending"])
        yield attempts
        yield denials
        yield accounts
        yield queue
        yield GaugeMetricFamily("duebot_campaign_workers", "Live campaign workers", value=len(c.control.workers()))
        yield GaugeMetricFamily("duebot_campaign_voice_calls", "Voice calls in progress",
                                value=c.control.slots_in_use())
