"""A synthetic labelled history from the seeds' shares and rates: it trains the demo's model and the tests'.

Every figure below is cited; where the seeds are silent the assumption is named. Nothing here is real data.

* Segment mix (seed 000 §2.2): malicious 18%, cash-flow 35%, dispute 12%, forgot 5%, legacy 20%, new business
  10%; average amounts 580 / 210 (non-malicious) / 1200 / 3500.
* Recovery within the horizon, per segment (the label's rate): malicious 25% (bad-debt rate 75%, §2.2.1, and
  < 30% for hidden evasion, §2.1.3); non-malicious 85% by negotiation (§2.2.2), split forgot 95%, cash-flow 86%,
  dispute 78% (weighted: 85%); legacy 40% (write-off target 40% §2.4.1, 45% with a collection agency §5.4);
  new business 60% (§2.2.4). The generator sets each segment's intercept so its sample hits these exactly.
* Promise keeping and reachability per segment: the campaign simulator's personas (campaigns/contactors.py:
  keep 0.3–0.85, answer × right party), so a generated history and a simulated campaign agree.
* Lost contact ~8% overall (§1.1.3), concentrated in malicious and legacy debts.
* Line type: mobile 58%, fixed 32%, other 10% (§1.1.1). Age: 18-30 41%, 31-50 35%, 51+ 18%, enterprise (no
  age) 6% (§1.1.2); age has no effect on the outcome here.
* Excluded attributes (gender, ethnicity, religion, language, name, phone, id_last4) are drawn independently of
  everything. `region` (tier-1/2/3 cities, rural) has a small direct effect on the outcome (assumption, after
  §1.1.1's higher arrears outside tier-1 cities) that no feature carries: the model cannot use it, and
  `duebot risk check` shows the score does not move with it although outcomes do.
* Effects of the features on the log-odds (assumptions, signs as collectors would expect): longer overdue and
  larger amounts lower it, more so past 90 days (the legal track, §3.3); broken promises, late bills, disputes
  and a wrong number lower it; kept promises, part payments, reachability and tenure raise it; plus
  unobserved personal circumstances (normal noise, sd 0.6), so the data are not separable.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from duebot.accounts.importer import SEGMENTS


@dataclass(frozen=True)
class Profile:
    share: float
    recovery: float
    mean_amount: float
    days: tuple[int, int]  # overdue days, log-uniform between
    promises: float  # mean promises to pay made (Poisson)
    keep: float  # share of promises kept
    disputes: float  # mean past disputes (Poisson)
    partial: float  # mean part payments (Poisson)
    late: float  # chance each of the last 12 bills was paid late
    reach: float  # chance a call attempt reaches the subscriber
    wrong_number: float
    tenure_months: float  # mean (exponential)


PROFILES: dict[str, Profile] = {
    "malicious": Profile(0.18, 0.25, 580, (30, 240), 2.0, 0.30, 0.15, 0.2, 0.45, 0.35 * 0.6, 0.15, 10),
    "cash_flow": Profile(0.35, 0.86, 210, (10, 120), 1.2, 0.70, 0.10, 0.8, 0.30, 0.65 * 0.85, 0.03, 40),
    "dispute": Profile(0.12, 0.78, 210, (10, 90), 0.5, 0.60, 1.20, 0.2, 0.12, 0.60 * 0.85, 0.03, 45),
    "forgot": Profile(0.05, 0.95, 210, (3, 45), 0.3, 0.85, 0.05, 0.1, 0.08, 0.75 * 0.9, 0.02, 50),
    "legacy": Profile(0.20, 0.40, 1200, (731, 1500), 0.8, 0.40, 0.30, 0.3, 0.40, 0.40 * 0.6, 0.20, 70),
    "new_business": Profile(0.10, 0.60, 3500, (15, 180), 0.6, 0.80, 0.40, 0.4, 0.15, 0.70 * 0.8, 0.03, 20),
}
assert set(PROFILES) == set(SEGMENTS) and abs(sum(p.share for p in PROFILES.values()) - 1) < 1e-9

LINE_TYPES = {"mobile": 0.58, "landline": 0.32, "unknown": 0.10}
AGE_BANDS = {"18-30": 0.41, "31-50": 0.35, "51+": 0.18, "": 0.06}
GENDERS = {"female": 0.49, "male": 0.49, "undisclosed": 0.02}
ETHNICITIES = {"group_a": 0.70, "group_b": 0.15, "group_c": 0.10, "group_d": 0.05}
RELIGIONS = {"none": 0.50, "religion_a": 0.25, "religion_b": 0.15, "religion_c": 0.10}
REGIONS = {"tier1": 0.20, "tier2": 0.30, "tier3": 0.30, "rural": 0.20}
REGION_EFFECT = {"tier1": 0.0, "tier2": 0.0, "tier3": -0.15, "rural": -0.30}
LANGUAGES = {"zh": 0.9, "en": 0.1}

COLUMNS = ["account_id", "recovered", "days_overdue", "amount", "segment", "broken_promises", "kept_promises",
           "disputes", "partial_payments", "late_bills_12m", "contact_attempts", "right_party_contacts",
           "wrong_number", "tenure_months", "line_type", "age_band",
           # never read by the model; here so that `duebot risk check` can show it
           "gender", "ethnicity", "religion", "region", "language", "name", "phone", "id_last4"]


def _pick(rng: np.random.Generator, table: dict[str, float], n: int) -> np.ndarray:
    names = list(table)
    return np.array(names, dtype=object)[rng.choice(len(names), size=n, p=list(table.values()))]


def _solve_intercept(lin: np.ndarray, target: float) -> float:
    """a such that mean(sigmoid(a + lin)) == target (bisection: the mean is increasing in a)."""
    lo, hi = -20.0, 20.0
    for _ in range(80):
        mid = (lo + hi) / 2
        if (1 / (1 + np.exp(-(mid + lin)))).mean() < target:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def generate(n: int, seed: int = 0) -> list[dict[str, object]]:
    """`n` labelled account snapshots (dicts with COLUMNS), reproducible for a seed."""
    if n < 1:
        raise ValueError("at least one account")
    rng = np.random.default_rng(seed)
    segments = np.array(SEGMENTS, dtype=object)[rng.choice(len(SEGMENTS), size=n,
                                                            p=[PROFILES[s].share for s in SEGMENTS])]
    cols: dict[str, np.ndarray] = {k: np.zeros(n) for k in (
        "days_overdue", "amount", "broken_promises", "kept_promises", "disputes", "partial_payments",
        "late_bills_12m", "contact_attempts", "right_party_contacts", "wrong_number", "tenure_months")}
    for name, p in PROFILES.items():
        m = segments == name
        k = int(m.sum())
        if not k:
            continue
        lo, hi = p.days
        cols["days_overdue"][m] = np.floor(np.exp(rng.uniform(np.log(lo), np.log(hi), k)))
        sigma = 0.7
        cols["amount"][m] = np.round(np.clip(rng.lognormal(np.log(p.mean_amount) - sigma**2 / 2, sigma, k),
                                             1.0, 99_999_999.0), 2)
        made = rng.poisson(p.promises, k)
        kept = rng.binomial(made, p.keep)
        cols["kept_promises"][m] = kept
        cols["broken_promises"][m] = made - kept
        cols["disputes"][m] = rng.poisson(p.disputes, k) + (1 if name == "dispute" else 0)
        cols["partial_payments"][m] = rng.poisson(p.partial, k)
        cols["late_bills_12m"][m] = rng.binomial(12, p.late, k)
        attempts = rng.poisson(3.0, k)
        cols["contact_attempts"][m] = attempts
        cols["right_party_contacts"][m] = rng.binomial(attempts, p.reach)
        cols["wrong_number"][m] = rng.random(k) < p.wrong_number
        cols["tenure_months"][m] = np.minimum(np.floor(rng.exponential(p.tenure_months, k)), 600)
    line = _pick(rng, LINE_TYPES, n)
    region = _pick(rng, REGIONS, n)
    age = _pick(rng, AGE_BANDS, n)
    age[(segments == "new_business") & (rng.random(n) < 0.5)] = ""  # enterprise lines have no age
    excluded = {"gender": _pick(rng, GENDERS, n), "ethnicity": _pick(rng, ETHNICITIES, n),
                "religion": _pick(rng, RELIGIONS, n), "language": _pick(rng, LANGUAGES, n)}
    id_last4 = rng.integers(0, 10_000, n)

    days = cols["days_overdue"]
    contactability = (cols["right_party_contacts"] + 1) / (cols["contact_attempts"] + 2)
    lin = (-0.55 * np.log1p(days) - 0.5 * (days > 90) - 0.45 * np.log1p(cols["amount"])
           - 0.45 * cols["broken_promises"] + 0.35 * cols["kept_promises"] - 0.25 * cols["disputes"]
           + 0.45 * cols["partial_payments"] * np.where(segments == "cash_flow", 2.0, 1.0)
           - 0.15 * cols["late_bills_12m"] + 2.0 * contactability - 1.0 * cols["wrong_number"]
           + 0.3 * np.log1p(cols["tenure_months"])
           + np.select([line == "landline", line == "unknown"], [0.15, -0.1], 0.0)
           + np.vectorize(REGION_EFFECT.get)(region)
           + rng.normal(0.0, 0.6, n))
    logit = np.zeros(n)
    for name, p in PROFILES.items():
        m = segments == name
        if m.any():
            centred = lin[m] - lin[m].mean()
            logit[m] = _solve_intercept(centred, p.recovery) + centred
    recovered = rng.random(n) < 1 / (1 + np.exp(-logit))

    rows: list[dict[str, object]] = []
    for i in range(n):
        rows.append({
            "account_id": f"SYN-{i + 1:07d}", "recovered": int(recovered[i]),
            "days_overdue": int(days[i]), "amount": f"{cols['amount'][i]:.2f}", "segment": segments[i],
            **{k: int(cols[k][i]) for k in ("broken_promises", "kept_promises", "disputes", "partial_payments",
                                            "late_bills_12m", "contact_attempts", "right_party_contacts",
                                            "tenure_months")},
            "wrong_number": "true" if cols["wrong_number"][i] else "false",
            "line_type": line[i], "age_band": age[i],
            **{k: v[i] for k, v in excluded.items()}, "region": region[i],
            "name": f"Synthetic Subscriber {i + 1}",
            "phone": f"+1 202 555 01{i % 100:02d}",  # the fictional 555-01xx range
            "id_last4": f"{id_last4[i]:04d}",
        })
    return rows
