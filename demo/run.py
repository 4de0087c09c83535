"""`duebot demo`: a whole campaign against simulated subscribers, on the embedded defaults, nothing to configure.

Starts the real stack (embedded redis-server, evidence writer, action server, emotion service, Rasa, web service,
campaign worker) on free loopback ports in a scratch data directory, plus the local Twilio fake; generates a
batch of accounts with the seed 000 §2.2 segment shares and average amounts; previews and launches a campaign
(the worker contacts the bulk through the simulated-subscriber contactor); plays seven persona subscribers as
real SMS conversations through the signed Twilio webhook, the real Rasa bot and the action server; prints the
KPI report and writes its plots; verifies the evidence log, exports one conversation's bundle and verifies it;
and stops every process it started, on errors and Ctrl-C too.
"""

from __future__ import annotations

import datetime as dt
import random
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import httpx
import redis
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from duebot import clients
from duebot.accounts.store import AccountStore
from duebot.processes import RunningService, ServiceSpec, free_port, start, stop, wait_ready
from duebot.settings import PROJECT_ROOT, Settings, export, load_settings

if TYPE_CHECKING:
    from duebot.campaigns.service import Campaigns

console = Console(width=None if sys.stdout.isatty() else 110)

# seed 000 §2.2: share of the arrears book and average amount owed, per segment
SEGMENT_MIX: dict[str, tuple[float, int]] = {
    "malicious": (0.18, 580), "cash_flow": (0.35, 210), "dispute": (0.12, 300), "forgot": (0.05, 150),
    "legacy": (0.20, 1200), "new_business": (0.10, 3500),
}
HEADER = ("account_id,name,phone,amount,due_date,currency,id_last4,birth_date,segment,timezone,pack,line_type,"
          "consent_ai_voice,consent_sms,branch,language")
# The bulk's names, written as a Chinese operator's records hold them (the cn pack speaks to them in Mandarin).
SURNAMES_ZH = "王李张刘陈杨黄赵吴周徐孙马朱"
GIVEN_ZH = ["伟", "芳", "敏", "静", "磊", "艳", "慧", "军", "玲", "涛", "秀英", "强", "梅", "波"]
BRANCHES = ("城关营业部", "北关营业部", "农村营业部")  # business offices, as seed 003's branch reports them
AUTH_TOKEN = "demo-auth-token-" + "d" * 16
ACCOUNT_SID = "AC" + "d" * 32
FROM_NUMBER = "+15005550006"
ID_LAST4 = "4472"


@dataclass(frozen=True)
class Persona:
    account_id: str
    name: str
    segment: str
    amount: str
    texts: tuple[str, ...]  # what the subscriber texts, one message per turn
    language: str = "en"  # the conversation's language (cn accounts default to Mandarin; these chose English)


PERSONAS: tuple[Persona, ...] = (
    Persona("P-PAYS", "Zhang Min", "forgot", "150.00", ("hello", ID_LAST4, "I want to pay it now")),
    Persona("P-FRIDAY", "Li Jing", "cash_flow", "230.50", ("hi", ID_LAST4, "I can pay on Friday", "yes")),
    Persona("P-PLAN", "Chen Hui", "cash_flow", "420.00",
            ("hello", ID_LAST4, "I can't pay all at once, can I pay in installments?", "yes")),
    Persona("P-DISPUTE", "Zhao Lei", "dispute", "310.00",
            ("hello", ID_LAST4, "I don't recognise these charges, I never used that service",
             "there are international roaming charges but I never left the country")),
    Persona("P-ANGRY", "Wu Qiang", "malicious", "580.00",
            ("hello", ID_LAST4, "this is outrageous, stop harassing me you useless idiots",
             "yes, get me a person")),
    Persona("P-WRONG", "Sun Mei", "forgot", "95.00", ("you have the wrong number, I don't know who that is",)),
    Persona("P-STOP", "Ma Tao", "cash_flow", "210.00", ("STOP",)),
    # Mandarin subscribers, as most of a Chinese operator's are
    Persona("P-ZH-PROMISE", "王芳", "cash_flow", "210.00", ("你好", "四四七二", "我下周五还", "对"), "zh"),
    Persona("P-ZH-GRIEF", "刘建国", "legacy", "380.00", ("你好，机主是我父亲，他上个月去世了",), "zh"),
)
CALL_PERSONA = Persona("P-CALL", "Xu Ling", "cash_flow", "260.00", ())  # promises Friday on a SIP call


@dataclass
class DemoOptions:
    accounts: int = 200
    data_dir: Path = PROJECT_ROOT / "var" / "demo"
    seed: int = 0
    short: bool = False
    campaign_timeout: float = 240.0


# ---------------------------------------------------------------- accounts

def daytime_zone(now: dt.datetime | None = None) -> str:
    """Asia/Shanghai if it is daytime there, else a real zone where it is: the demo's subscribers must be
    reachable now, and the gate's quiet hours (cn pack: 08:00-22:00 local) are real."""
    now = now or dt.datetime.now(dt.UTC)
    for zone in ("Asia/Shanghai", "Asia/Kolkata", "Europe/Berlin", "Europe/London", "America/Sao_Paulo",
                 "America/New_York", "America/Chicago", "America/Los_Angeles", "Pacific/Honolulu",
                 "Pacific/Auckland", "Asia/Tokyo"):
        if 9 <= now.astimezone(ZoneInfo(zone)).hour < 20:
            return zone
    return f"Etc/GMT{now.hour - 13:+d}"  # about 13:00 there (Etc/GMT signs are inverted)


def _row(account_id: str, name: str, phone: str, amount: str, due: dt.date, born: str, segment: str,
         zone: str, consent_sms: bool = True, branch: str = BRANCHES[0], language: str = "") -> str:
    """A cn-pack row; an empty language leaves it to the pack (Mandarin)."""
    return (f"{account_id},{name},{phone},{amount},{due.isoformat()},CNY,{ID_LAST4},{born},{segment},{zone},cn,"
            f"mobile,true,{'true' if consent_sms else 'false'},{branch},{language}")


def segment_counts(n: int) -> dict[str, int]:
    """The seed 000 shares of n accounts, rounded so they add up to n (largest remainders)."""
    exact = {s: share * n for s, (share, _) in SEGMENT_MIX.items()}
    counts = {s: int(v) for s, v in exact.items()}
    for s in sorted(exact, key=lambda s: exact[s] - counts[s], reverse=True)[:n - sum(counts.values())]:
        counts[s] += 1
    return counts


def generate_accounts(path: Path, n: int, zone: str, seed: int) -> dict[str, int]:
    """n accounts across the segments with seed 000's shares and average amounts (amounts spread ±60%)."""
    rng = random.Random(seed)
    today = dt.date.today()
    counts = segment_counts(n)
    plan = [segment for segment, k in counts.items() for _ in range(k)]
    rng.shuffle(plan)
    lines = [HEADER]
    for i, segment in enumerate(plan):
        average = SEGMENT_MIX[segment][1]
        amount = f"{max(20.0, rng.uniform(0.4, 1.6) * average):.2f}"
        overdue = rng.randint(800, 1400) if segment == "legacy" else rng.randint(16, 120)
        born = f"{rng.randint(1945, 2003)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
        name = f"{rng.choice(SURNAMES_ZH)}{rng.choice(GIVEN_ZH)}"
        phone = f"+86138{10_000_000 + i:08d}"
        lines.append(_row(f"D-{i:05d}", name, phone, amount, today - dt.timedelta(days=overdue), born, segment,
                          zone, branch=rng.choice(BRANCHES)))
    path.write_text("\n".join(lines) + "\n")
    return counts


def add_history(store: AccountStore, account_ids: list[str], seed: int) -> dict[str, int]:
    """Before the campaign: some subscribers opted out earlier, some disputes are still open. The gate must
    hold both (the preview shows them by reason code)."""
    rng = random.Random(seed + 1)
    history = {"opted_out": 0, "open_dispute": 0}
    for account_id in account_ids:
        account = store.get_account(account_id)
        if account is None:
            continue
        roll = rng.random()
        if roll < 0.04:
            store.set_opt_out(account.phone, True, "sms", "demo: replied STOP last quarter")
            history["opted_out"] += 1
        elif account.segment == "dispute" and roll < 0.35:
            store.open_dispute(account_id, "unknown charges", "opened before the campaign", None)
            history["open_dispute"] += 1
    return history


def write_personas(path: Path, zone: str) -> None:
    today = dt.date.today()
    lines = [HEADER]
    for i, p in enumerate((*PERSONAS, CALL_PERSONA)):
        lines.append(_row(p.account_id, p.name, f"+86139{20_000_000 + i:08d}", p.amount,
                          today - dt.timedelta(days=40), "1985-04-12", p.segment, zone, language=p.language))
    path.write_text("\n".join(lines) + "\n")


# ---------------------------------------------------------------- environment

def prepare_environment(opts: DemoOptions) -> Settings:
    """A wiped scratch data dir, free ports, the Twilio fake's credentials, exported for the children."""
    if opts.data_dir.exists():
        shutil.rmtree(opts.data_dir)
    opts.data_dir.mkdir(parents=True)
    base = load_settings()
    ensure_model(base)
    (opts.data_dir / "models").symlink_to(base.models_dir)  # the model `make setup` trained
    web_port = free_port()
    export({
        "REDIS_URL": None, "DUEBOT_DB_URL": None,
        "DUEBOT_DATA_DIR": str(opts.data_dir), "DUEBOT_RASA_PORT": str(free_port()),
        "DUEBOT_ACTIONS_PORT": str(free_port()), "DUEBOT_WEB_PORT": str(web_port),
        "DUEBOT_REDIS_PORT": str(free_port()), "DUEBOT_EMOTION_PORT": str(free_port()),
        "DUEBOT_PUBLIC_URL": f"http://127.0.0.1:{web_port}", "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN, "TWILIO_FROM_NUMBER": FROM_NUMBER, "DUEBOT_EVIDENCE_ASSESS_AFTER": "5",
        "DUEBOT_SMS_BRAND": "Acme Telecom billing (duebot demo)", "HF_HUB_OFFLINE": "1",
    })
    return load_settings()


def ensure_model(settings: Settings) -> None:
    """From a fresh clone without `make setup`'s training: train the Rasa model (and emotion head) first."""
    from duebot.training.train import model_path, train

    if model_path(settings).exists():
        return
    with console.status("no trained model for the current training data: training it first (a few minutes)"):
        path, _ = train(settings, log=settings.log_dir / "train.log")
    console.print(f"trained {path}")


class TwilioFakeProcess:
    """The offline Twilio (`python -m duebot.demo.twilio_fake`), supervised like the stack's own services."""

    def __init__(self, log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.spec = ServiceSpec(
            name="twilio-fake", log_path=log, ready_timeout=20,
            argv=[sys.executable, "-m", "duebot.demo.twilio_fake", "--port", str(self.port),
                  "--account-sid", ACCOUNT_SID, "--auth-token", AUTH_TOKEN, "--from-number", FROM_NUMBER],
            ready=lambda: httpx.get(f"{self.url}/fake/state", timeout=1).status_code == 200)
        self.service: RunningService | None = None

    def start(self) -> None:
        self.service = start(self.spec)
        wait_ready(self.service, poll=0.1)

    def state(self) -> dict:
        return httpx.get(f"{self.url}/fake/state", timeout=5).json()

    def stop(self) -> None:
        if self.service is not None:
            stop(self.service)


# ---------------------------------------------------------------- campaign

def import_campaign(opts: DemoOptions, zone: str) -> tuple[str, dict[str, int]]:
    from duebot.accounts.importer import import_file
    from duebot.campaigns.service import Campaigns

    bulk, personas = opts.data_dir / "accounts.csv", opts.data_dir / "personas.csv"
    counts = generate_accounts(bulk, opts.accounts, zone, opts.seed)
    write_personas(personas, zone)
    store = AccountStore()
    import_file(personas, store)  # the persona subscribers: played over SMS below, not by the simulator
    imported = Campaigns(store, redis.Redis()).import_file(bulk, strategy="demo", name="demo")
    counts.update(add_history(store, list(imported.report.account_ids), opts.seed))
    rejected = len(imported.report.errors)
    console.print(f"imported {imported.report.imported} accounts ({rejected} rejected) as campaign "
                  f"[bold]{imported.campaign_id}[/bold]; personas: {', '.join(p.account_id for p in PERSONAS)}")
    return imported.campaign_id, counts


def print_preview(campaign_id: str) -> dict:
    from duebot.campaigns.preview import preview

    summary = preview(AccountStore(), campaign_id, "demo").summary()
    table = Table(title=f"preview: gate decision now for {summary['accounts']} accounts")
    table.add_column("reason")
    table.add_column("accounts", justify="right")
    for reason, n in summary["by_reason"].items():
        table.add_row(reason, str(n))
    console.print(table)
    console.print("first step: " + ", ".join(f"{r['step']} [{r['channel']}] {r['gate']} {r['accounts']}"
                                             for r in summary["by_step"]))
    return summary


def run_campaign(campaign_id: str, client: redis.Redis, timeout: float) -> dict:
    from duebot.campaigns.service import Campaigns

    campaigns = Campaigns(AccountStore(), client)
    enqueued = campaigns.launch(campaign_id)
    console.print(f"launched {campaign_id}: {enqueued} jobs enqueued; the campaign worker contacts them")
    handled = 0
    columns = (TextColumn("{task.description:<26}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    deadline = time.monotonic() + timeout
    with Progress(*columns, console=console, transient=False) as progress:
        tasks: dict[tuple[str, str], int] = {}
        while True:
            state = campaigns.status(campaign_id)
            for s in state["steps"]:
                key = (s["step"], s["channel"])
                if key not in tasks:
                    tasks[key] = progress.add_task(escape(f"{s['step']} [{s['channel']}]"), total=s["accounts"])
                progress.update(tasks[key], total=s["accounts"], completed=s["completed"])
            if state["status"] in ("completed", "cancelled") or time.monotonic() > deadline:
                break
            handled += demo_agent_closes_human_steps(campaigns)
            time.sleep(0.5)
    console.print(f"campaign {state['status']}; accounts "
                  + ", ".join(f"{k} {v}" for k, v in state["accounts"].items()))
    if handled:
        console.print(f"the demo's agent closed {handled} human_queue work items (in production a person does, in "
                      "the console's work queue: /console/work)")
    return state


def demo_agent_closes_human_steps(campaigns: Campaigns) -> int:
    """Demo mode only: the campaign's human_queue step stays open until a person closes its work item; the demo
    plays that person so the campaign can finish."""
    from duebot.accounts.models import Attempt
    from duebot.campaigns.worker import close_human_step

    with campaigns.store.session() as s:
        waiting = [a.key for a in s.query(Attempt).filter(Attempt.channel == "human", Attempt.state == "started")]
    return sum(close_human_step(campaigns.store, campaigns.client, key) for key in waiting)


# ---------------------------------------------------------------- personas over SMS

class SmsPhone:
    """The subscriber's phone: texts reach duebot's webhook exactly as Twilio posts them (form-encoded, signed
    with the account's auth token against the public URL)."""

    def __init__(self, web_url: str) -> None:
        self.url = f"{web_url}/twilio/sms"

    def text(self, from_: str, body: str) -> list[str]:
        import secrets

        from duebot.channels.twilio_signature import sign

        sid = "SM" + secrets.token_hex(16)
        params = {"MessageSid": sid, "SmsSid": sid, "SmsMessageSid": sid, "AccountSid": ACCOUNT_SID,
                  "From": from_, "To": FROM_NUMBER, "Body": body, "NumMedia": "0", "SmsStatus": "received",
                  "ApiVersion": "2010-04-01"}
        headers = {"X-Twilio-Signature": sign(self.url, params, AUTH_TOKEN), "User-Agent": "TwilioProxy/1.1"}
        reply = httpx.post(self.url, data=params, headers=headers, timeout=60)
        reply.raise_for_status()
        return [re.sub(r"\s+", " ", m).strip() for m in re.findall(r"<Message>(.*?)</Message>", reply.text, re.S)]


class Reminders:
    """Outbound reminders as the product sends them: SmsSender (gate reservation, rate limit) → Twilio REST."""

    TEXT = "Acme Telecom: a reminder about your account. Reply to this text to talk with our assistant."

    def __init__(self, client: redis.Redis) -> None:
        from duebot.channels.sms.config import SmsSettings
        from duebot.channels.sms.sender import SmsSender, twilio_client
        from duebot.evidence.inbox import InboxAuditSink
        from duebot.policies.reserve import LiveGate

        settings = SmsSettings.from_settings()
        inbox = clients.evidence_inbox(client)
        self.sender = SmsSender(settings, LiveGate(client, "cn", sink=InboxAuditSink(inbox)), AccountStore(),
                                twilio_client(settings), client, inbox)

    def send(self, account_id: str) -> str:
        sent = self.sender.send(account_id, self.TEXT)
        return f"duebot (reminder): {sent.body}" if sent.sent else f"reminder not sent: {', '.join(sent.reasons)}"


def play_personas(web_url: str, client: redis.Redis, log: Callable[[str], None]) -> dict[str, list[str]]:
    """Each persona gets the gated SMS reminder (SmsSender → Twilio fake), then texts back turn by turn."""
    import html

    store = AccountStore()
    reminders = Reminders(client)
    phone = SmsPhone(web_url)
    transcripts: dict[str, list[str]] = {}
    for persona in PERSONAS:
        account = store.get_account(persona.account_id)
        assert account is not None
        lines: list[str] = [reminders.send(persona.account_id)]
        for body in persona.texts:
            replies = phone.text(account.phone, body)
            lines.append(f"subscriber: {body}")
            lines.extend(f"duebot: {html.unescape(r)}" for r in replies) if replies else lines.append("duebot: —")
        transcripts[persona.account_id] = lines
        log(f"{persona.account_id:<10} {len(persona.texts)} texts, {len(lines) - 1} messages")
    return transcripts


def _phone_call(opts: DemoOptions, settings: Settings, client: redis.Redis) -> list[str]:
    from duebot.demo.sip_call import play_call

    try:
        return play_call(opts.data_dir / "sip", settings.rasa_url, client, console.print)
    except Exception as exc:  # noqa: BLE001 - the rest of the demo still runs; the failure is shown
        console.print(f"[red]the SIP call failed: {exc!r} (logs in {opts.data_dir / 'sip'})[/red]")
        return [f"call failed: {exc!r}"]


def persona_outcomes(evidence_dir: Path) -> dict[str, str]:
    """What each persona's conversation ended with, read back from the evidence log (outcome records)."""
    from duebot.evidence.log import EvidenceLog

    outcomes: dict[str, str] = {}
    with EvidenceLog.open(evidence_dir, readonly=True) as log:
        for persona in (*PERSONAS, CALL_PERSONA):
            records = log.records_for(f"sms:{persona.account_id}") + log.records_for(f"voice:{persona.account_id}")
            kinds = [r.body.get("type") for r in records if r.kind == "outcome"]
            voice = sum(1 for r in records if r.kind.startswith("voice"))
            outcomes[persona.account_id] = (", ".join(str(k) for k in kinds) or "no outcome") + (
                f" ({voice} voice records)" if voice else "")
    return outcomes


def wait_evidence_drained(client: redis.Redis, timeout: float = 30.0) -> None:
    """The writer acknowledges what is durable; wait until the inbox has nothing pending."""
    from duebot.evidence.inbox import GROUP, STREAM

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        groups = {g["name"].decode(): g for g in client.xinfo_groups(STREAM)}
        group = groups.get(GROUP)
        if group is not None and group["pending"] == 0 and not group.get("lag"):
            return
        time.sleep(0.5)
    console.print(f"[yellow]evidence inbox not drained after {timeout:.0f}s[/yellow]")


# ---------------------------------------------------------------- report and evidence

def print_money_report(out: Path) -> None:
    """The operator's money KPIs by branch and week, beside seed 000's targets (CSV, JSON and plots in `out`)."""
    from duebot.campaigns import money
    from duebot.campaigns.report import write_money_report
    from duebot.campaigns.report_cli import kpi_table

    result = money.report(AccountStore(), by="branch", period="week")
    write_money_report(result, out)
    console.print(kpi_table(result))
    console.print(f"money KPIs by branch and week: {out}")


def score_risk(data_dir: Path) -> None:
    """The explainable risk score as an operator runs it (docs/risk.md): train on a labelled history (here one
    generated from the seeds' shares and rates), score the demo's accounts, keep the score distribution plot."""
    history = data_dir / "risk-history.csv"
    for args in (["synth", "--accounts", "5000", "--out", str(history)], ["train", "--data", str(history)],
                 ["score", "--show", "5"]):
        done = subprocess.run([sys.executable, "-m", "duebot.cli", "risk", *args], capture_output=True, text=True)
        if done.returncode != 0:
            console.print(f"[red]duebot risk {args[0]} failed:[/red] {done.stderr[-800:]}")
            return
        if args[0] != "synth":
            console.print(done.stdout.rstrip(), markup=False, highlight=False)
    plots = sorted((data_dir / "risk" / "models").glob("*/scores.png"))
    if plots:
        shutil.copy(plots[-1], data_dir / "report" / "risk_scores.png")
        console.print(f"score distribution: {data_dir / 'report' / 'risk_scores.png'}")


def print_report(campaign_id: str, out: Path) -> dict:
    from duebot.campaigns.cli import kpi_table
    from duebot.campaigns.report import write_report

    result = write_report(AccountStore(), campaign_id, out)
    console.print(kpi_table(campaign_id, result["kpis"]))
    console.print("funnel: " + ", ".join(f"{k} {v}" for k, v in result["funnel"].items()))
    return result


def evidence_cli(*args: str) -> tuple[int, str]:
    """The QA reviewer's own commands (`duebot evidence …`), run as they would run them."""
    done = subprocess.run([sys.executable, "-m", "duebot.cli", "evidence", *args], capture_output=True,
                          text=True, timeout=300)
    return done.returncode, (done.stdout + done.stderr).strip()


def check_evidence(data_dir: Path, conversation_id: str) -> Path:
    code, text = evidence_cli("verify")
    console.print(f"evidence verify: {text.splitlines()[-1] if text else code} (exit {code})")
    bundle = data_dir / f"{conversation_id.replace(':', '_')}.zip"
    code, text = evidence_cli("export", conversation_id, "--out", str(bundle))
    console.print(f"evidence export {conversation_id}: {text} (exit {code})")
    code, text = evidence_cli("verify-bundle", str(bundle))
    console.print(f"evidence verify-bundle: {text.splitlines()[-1] if text else code} (exit {code})")
    code, text = evidence_cli("verify")
    console.print(f"evidence verify after export: {text.splitlines()[-1] if text else code} (exit {code})")
    return bundle


# ---------------------------------------------------------------- the whole demo

def _print_transcripts(transcripts: dict[str, list[str]], outcomes: dict[str, str]) -> None:
    for account_id, lines in transcripts.items():
        console.rule(f"{account_id}: outcome {outcomes.get(account_id, '?')}")
        for line in lines:
            console.print(line, markup=False, highlight=False)


# One console user per role (issue 10), reset at every run; the demo's data directory is a scratch one.
DEMO_CONSOLE_USERS = {"admin": ("admin", "demo-admin-pass"), "manager": ("campaign_manager", "demo-manager-pass"),
                      "qa": ("qa_reviewer", "demo-qa-pass"), "auditor": ("auditor", "demo-auditor-pass"),
                      "agent": ("agent", "demo-agent-pass")}


def create_console_users() -> str:
    """The users, and an API token of the campaign manager (the operator API takes tokens: issue 18)."""
    from duebot.console.tokens import ApiTokens
    from duebot.console.users import Users

    store = AccountStore()
    users = Users(store)
    for name, (role, password) in DEMO_CONSOLE_USERS.items():
        users.ensure(name, role, password)
    return ApiTokens(store).create("manager", "demo").token


def run(opts: DemoOptions) -> int:
    from duebot.serve import Stack

    started = time.monotonic()
    if opts.short:
        opts.accounts = min(opts.accounts, 40)
    settings = prepare_environment(opts)
    zone = daytime_zone()
    console.print(f"[bold]duebot demo[/bold]: data in {opts.data_dir}; subscribers in {zone} "
                  f"(local time {dt.datetime.now(ZoneInfo(zone)):%H:%M}, inside the cn pack's contact hours)")
    campaign_id, counts = import_campaign(opts, zone)
    console.print("segments and history: " + ", ".join(f"{s} {n}" for s, n in counts.items()))
    api_token = create_console_users()
    settings.log_dir.mkdir(parents=True, exist_ok=True)
    fake = TwilioFakeProcess(settings.log_dir / "twilio_fake.log")
    export({"TWILIO_API_BASE": fake.url})  # the real twilio client, pointed at the fake (web service too)
    stack = Stack(settings, say=lambda line: console.print(line, markup=False, highlight=False))
    try:
        fake.start()
        console.print(f"twilio   fake at {fake.url} (pid {fake.service.pid if fake.service else '?'})")
        stack.start_all()
        client = clients.redis_client()
        web_url = f"http://{settings.host}:{settings.web_port}"
        print_preview(campaign_id)
        state = run_campaign(campaign_id, client, opts.campaign_timeout)
        console.rule("seven subscribers over SMS (real webhook, real Rasa bot)")
        transcripts = play_personas(web_url, client, console.print)
        if not opts.short:
            console.rule("a phone call over SIP (kamailio + baresip on loopback, real speech both ways)")
            transcripts[CALL_PERSONA.account_id] = [Reminders(client).send(CALL_PERSONA.account_id),
                                                    *_phone_call(opts, settings, client)]
        texts = len(fake.state()["messages"])
        console.print(f"Twilio fake: {texts} outbound texts sent through its REST API")
        wait_evidence_drained(client)
        time.sleep(6)  # the writer assesses the three legal elements after 5 s of quiet
        wait_evidence_drained(client)
    finally:
        console.print("stopping every process the demo started")
        stack.stop_all()
        fake.stop()
    outcomes = persona_outcomes(settings.data_dir / "evidence")
    _print_transcripts(transcripts, outcomes)
    console.rule("report")
    report = print_report(campaign_id, opts.data_dir / "report")
    print_money_report(opts.data_dir / "report" / "kpis")
    console.rule("risk score")
    score_risk(opts.data_dir)
    console.rule("evidence")
    bundle = check_evidence(opts.data_dir, "sms:P-FRIDAY")
    _print_where(opts, web_url, report, bundle, state, time.monotonic() - started, api_token)
    return 0


def _print_where(opts: DemoOptions, web_url: str, report: dict, bundle: Path, state: dict, took: float,
                 api_token: str) -> None:
    console.rule("where things are")
    for name, path in report["files"].items():
        console.print(f"{name}: {path}")
    console.print(f"evidence log: {opts.data_dir / 'evidence'}   bundle: {bundle}")
    console.print(f"logs: {opts.data_dir / 'log'}")
    console.print(f"the web service ran at {web_url} (API docs at {web_url}/docs). Web console: run "
                  f"`DUEBOT_DATA_DIR={opts.data_dir} duebot serve` and open http://127.0.0.1:8080/console "
                  "(this demo's data: campaigns, transcripts, the integrity badge, annotations, bundles); log in as")
    for name, (role, password) in DEMO_CONSOLE_USERS.items():
        console.print(f"  {name:<8} password {password:<18} ({role})", markup=False, highlight=False)
    console.print(f"the operator API (/campaigns/…, /gate/check, /metrics) takes `Authorization: Bearer {api_token}` "
                  "(manager's token; `duebot console token` makes others)", markup=False, highlight=False)
    console.print(f"demo finished in {took:.0f}s: campaign {state['status']}")
