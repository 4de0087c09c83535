"""Roles and what each may do: the one table the server checks (and docs/console.md's role matrix shows)."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    ADMIN = "admin"
    CAMPAIGN_MANAGER = "campaign_manager"
    QA_REVIEWER = "qa_reviewer"
    AUDITOR = "auditor"
    MONITOR = "monitor"  # a scraper or dashboard: campaign progress and /metrics, no personal data, nothing else
    AGENT = "agent"  # a collections agent: takes the work queue's items (handoffs, disputes, reviews) and closes them


class Perm(StrEnum):
    USERS = "manage users"
    CAMPAIGN_VIEW = "see campaigns, progress and KPI reports"
    KPI_VIEW = "see money KPIs by branch and period"
    CAMPAIGN_PREVIEW = "preview a campaign's gate decisions"
    CAMPAIGN_IMPORT = "import accounts as a campaign"
    CAMPAIGN_CONTROL = "launch, pause, resume, cancel campaigns"
    TRANSCRIPT_VIEW = "browse and read transcripts (masked)"
    UNMASK = "unmask personal data in a transcript (logged)"
    AUDIO = "listen to call audio"
    ANNOTATE = "annotate transcripts"
    BUNDLE = "export evidence bundles (unmasked, verifiable)"
    ACCESS_LOG = "read the access log"
    GATE_CHECK = "ask the contact gate for decisions (POST /gate/check)"
    METRICS = "read service metrics (GET /metrics)"
    WORK_VIEW = "see the work queue"
    WORK_ACT = "take and resolve work-queue items (their personal data unmasked for the assignee, logged)"


A, M, Q, U, W, G = Role.ADMIN, Role.CAMPAIGN_MANAGER, Role.QA_REVIEWER, Role.AUDITOR, Role.MONITOR, Role.AGENT
# Least privilege (seed 000 §1.3.2/§5.2): the admin runs the console, not the data; campaign managers see
# transcripts of their outcomes masked; personal data only for QA and audit, and only as a logged action.
# The same table decides what an API token may do: a token acts with the role of the user it belongs to.
MATRIX: dict[Perm, frozenset[Role]] = {
    Perm.USERS: frozenset({A}),
    Perm.CAMPAIGN_VIEW: frozenset({A, M, Q, U, W}),
    Perm.KPI_VIEW: frozenset({A, M, U}),  # aggregates only (no account is named): who runs, audits or oversees
    Perm.CAMPAIGN_PREVIEW: frozenset({M, U}),
    Perm.CAMPAIGN_IMPORT: frozenset({M}),
    Perm.CAMPAIGN_CONTROL: frozenset({M}),
    Perm.TRANSCRIPT_VIEW: frozenset({M, Q, U, G}),  # an agent reads the conversation behind an item
    Perm.UNMASK: frozenset({Q, U}),
    Perm.AUDIO: frozenset({Q, U}),  # a voice cannot be masked, so it follows the unmask right
    Perm.ANNOTATE: frozenset({Q}),
    Perm.BUNDLE: frozenset({Q, U}),  # a verifiable bundle holds the original payloads, so unmask roles only
    Perm.ACCESS_LOG: frozenset({A, U}),
    Perm.GATE_CHECK: frozenset({M, U}),  # what the preview shows, for requests of the caller's own
    Perm.METRICS: frozenset({A, M, W}),  # campaign counters only: no personal data
    Perm.WORK_VIEW: frozenset({M, G}),  # managers watch the queue (masked); agents work it
    Perm.WORK_ACT: frozenset({G}),  # personal data only for the item's assignee, each view an `access` record
}
# Personal-data categories a role sees without unmasking: managers need amounts to run a portfolio.
VISIBLE_BY_DEFAULT: dict[Role, frozenset[str]] = {
    A: frozenset(), M: frozenset({"amount"}), Q: frozenset(), U: frozenset(), W: frozenset(), G: frozenset(),
}


def allowed(role: Role | str, perm: Perm) -> bool:
    return Role(role) in MATRIX[perm]


def matrix_markdown() -> str:
    """The role matrix as a Markdown table (docs/console.md and `duebot console roles`)."""
    roles = list(Role)
    lines = ["| may … | " + " | ".join(r.value for r in roles) + " |", "|---" * (len(roles) + 1) + "|"]
    for perm, who in MATRIX.items():
        lines.append(f"| {perm.value} | " + " | ".join("✓" if r in who else "–" for r in roles) + " |")
    return "\n".join(lines)
