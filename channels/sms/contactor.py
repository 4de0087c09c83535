"""Campaign SMS steps through Twilio: the `twilio_sms` contactor of the campaign worker.

The worker has already taken the gate's reservation for the step; the text goes out under it through the same
`SmsSender` as every other outbound text (per-number rate limit, the pack's opt-out notice, Twilio, contact
history, evidence). The text is the neutral reminder of `channels/sms/texts.yml` in the account's language:
a text can be read by anyone holding the phone, so it never states the debt; replying starts the verified
conversation.

Exactly once: a Redis marker per idempotency key is set (SET NX) before Twilio is called and holds the result
after. A second attempt of the same key (a re-delivered job, another worker) finds it and does not text again;
a marker left without a result by a crash means "perhaps sent": counted, never repeated.
"""

from __future__ import annotations

import json
from dataclasses import asdict

import redis

from duebot import clients
from duebot.accounts.store import AccountStore
from duebot.campaigns.contactors import AttemptResult, ContactJob, Lookup
from duebot.channels.sms.config import SmsSettings
from duebot.channels.sms.sender import SmsSender, twilio_client
from duebot.channels.sms.texts import campaign_text_kind, render, text_language

MARKER = "duebot:sms:job:"
MARKER_TTL = 400 * 86400  # longer than any campaign, so a job re-delivered late still finds it
STARTED = "started"


class TwilioSmsContactor:
    def __init__(self, store: AccountStore, client: redis.Redis, sender: SmsSender | None = None,
                 settings: SmsSettings | None = None) -> None:
        self.client = client
        if sender is None:
            settings = settings or SmsSettings.from_settings()
            sender = SmsSender(settings, clients.gates(client), store, twilio_client(settings), client,
                               clients.evidence_inbox(client))
        self.sender = sender

    def lookup(self, key: str) -> Lookup:
        raw = self.client.get(MARKER + key)
        if raw is None:
            return Lookup(False)
        if raw.decode() == STARTED:
            return Lookup(True, None)
        return Lookup(True, AttemptResult(**json.loads(raw)))

    def contact(self, job: ContactJob) -> AttemptResult:
        if not self.client.set(MARKER + job.key, STARTED, nx=True, ex=MARKER_TTL):
            found = self.lookup(job.key)  # this step was attempted before: never a second text
            return found.result if found.result is not None else AttemptResult(None)
        language = text_language(job.language)
        text = render(campaign_text_kind(job.step_name), language, brand=self.sender.settings.brand_for(language))
        sent = self.sender.send(job.account_id, text, job.purpose, reservation_id=job.reservation_id)
        # Twilio accepted the text; a later "undelivered" status callback corrects the contact history.
        result = (AttemptResult("delivered", conversation_id=f"sms:{job.account_id}") if sent.sent
                  else AttemptResult("failed"))
        self.client.set(MARKER + job.key, json.dumps(asdict(result)), ex=MARKER_TTL)
        return result

