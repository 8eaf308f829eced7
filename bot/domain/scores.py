"""Where survey answers split, written once: the rules, and the SQL that counts them, take
these values (as parameters, in SQL).

NPS: promoters answer 9-10, passives 7-8, detractors 0-6. Satisfaction (1-5): 1-2 is unhappy.
"""

from __future__ import annotations

NPS_PROMOTER_FROM = 9
NPS_DETRACTOR_UP_TO = 6
SATISFACTION_DETRACTOR_UP_TO = 2

# Named SQL parameters for the queries that count or flag answers.
CUT_OFFS = {
    "nps_promoter_from": NPS_PROMOTER_FROM,
    "nps_detractor_up_to": NPS_DETRACTOR_UP_TO,
    "satisfaction_detractor_up_to": SATISFACTION_DETRACTOR_UP_TO,
}


def is_detractor(kind: str, score: int) -> bool:
    """An unhappy answer: it alerts the team and raises the `detractor` flag."""
    if kind == "nps":
        return score <= NPS_DETRACTOR_UP_TO
    return score <= SATISFACTION_DETRACTOR_UP_TO
