"""Roles and what each may do: the one table the server checks (and the README's role matrix shows)."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    ADMIN = "admin"
    CAMPAIGN_MANAGER = "campaign_manager"
    QA_REVIEWER = "qa_reviewer"
    AUDITOR = "auditor"


class Perm(StrEnum):
    USERS = "manage users"
    CAMPAIGN_VIEW = "see campaigns, progress and KPI reports"
    CAMPAIGN_PREVIEW = "preview a campaign's gate decisions"
    CAMPAIGN_IMPORT = "import accounts as a campaign"
    CAMPAIGN_CONTROL = "launch, pause, resume, cancel campaigns"
    TRANSCRIPT_VIEW = "browse and read transcripts (masked)"
    UNMASK = "unmask personal data in a transcript (logged)"
    AUDIO = "listen to call audio"
    ANNOTATE = "annotate transcripts"
    BUNDLE = "export evidence bundles (unmasked, verifiable)"
    ACCESS_LOG = "read the access log"


A, M, Q, U = Role.ADMIN, Role.CAMPAIGN_MANAGER, Role.QA_REVIEWER, Role.AUDITOR
# Least privilege (seed 000 §1.3.2/§5.2): the admin runs the console, not the data; campaign managers see
# transcripts of their outcomes masked; personal data only for QA and audit, and only as a logged action.
MATRIX: dict[Perm, frozenset[Role]] = {
    Perm.USERS: frozenset({A}),
    Perm.CAMPAIGN_VIEW: frozenset({A, M, Q, U}),
    Perm.CAMPAIGN_PREVIEW: frozenset({M, U}),
    Perm.CAMPAIGN_IMPORT: frozenset({M}),
    Perm.CAMPAIGN_CONTROL: frozenset({M}),
    Perm.TRANSCRIPT_VIEW: frozenset({M, Q, U}),
    Perm.UNMASK: frozenset({Q, U}),
    Perm.AUDIO: frozenset({Q, U}),  # a voice cannot be masked, so it follows the unmask right
    Perm.ANNOTATE: frozenset({Q}),
    Perm.BUNDLE: frozenset({Q, U}),  # a verifiable bundle holds the original payloads, so unmask roles only
    Perm.ACCESS_LOG: frozenset({A, U}),
}
# Personal-data categories a role sees without unmasking: managers need amounts to run a portfolio.
VISIBLE_BY_DEFAULT: dict[Role, frozenset[str]] = {
    A: frozenset(), M: frozenset({"amount"}), Q: frozenset(), U: frozenset(),
}


def allowed(role: Role | str, perm: Perm) -> bool:
    return Role(role) in MATRIX[perm]


def matrix_markdown() -> str:
    """The role matrix as a Markdown table (README and `duebot console roles`)."""
    roles = list(Role)
    lines = ["| may … | " + " | ".join(r.value for r in roles) + " |", "|---" * (len(roles) + 1) + "|"]
    for perm, who in MATRIX.items():
        lines.append(f"| {perm.value} | " + " | ".join("✓" if r in who else "–" for r in roles) + " |")
    return "\n".join(lines)
