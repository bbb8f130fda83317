"""Credibility of both sides (DESIGN.md §6): a 0-100 score and a level for every service
institution and every enterprise, built from parts a person can check.

Layers, one module each, kept apart so the same rule serves pages, the jobs and tests
(this package re-exports their public names: ``from providers import credibility`` works):

1. score.py: ``score(inputs)`` is a PURE function from the figures of one organisation
   (``CredibilityInputs``) to a ``CredibilityResult`` with a per-part breakdown (points, max
   points, the raw figure and a sentence). No database, no clock.
2. gather.py: ``gather(session, now, org_ids)`` collects those figures with a handful of GROUP BY
   queries, for a few organisations or for all of them at once (the nightly run reads
   purchase_order twice and review once, whatever the number of organisations).
3. store.py: ``recompute``/``recompute_many``/``recompute_all`` store the score on ``Organisation``,
   write a ``CredibilitySnapshot`` when the score or level changed, and queue the published
   listings of an institution whose score changed in the search outbox, all in the caller's
   transaction. Order transitions only mark both parties in ``credibility_dirty``
   (subscribers.py, an after-commit subscriber of ``OrderTransitioned``); ``drain_dirty``
   recomputes them after commit (``flask --app marketplace refresh-credibility``).
4. queries.py: reads for pages and the staff console; actions.py: staff actions (watch,
   suspend, reinstate, verify enterprises).

The parts and their weights (100 points in all)
-------------------------------------------------
=============  ===  ===========================================================================
verification    15  provider: verified 15, application under review 5, otherwise 0;
                    enterprise: verified 15, registered with a checked credit code 10;
                    suspended organisations get 0 while suspended
rating          25  Bayesian average of published, not hidden reviews about the organisation,
                    blended with 5 neutral 3.5★ reviews: (5 × 3.5 + sum) / (5 + n);
                    1★ = 0 points, 5★ = 25
on time         20  provider: completed orders delivered by their due date; enterprise: orders
                    paid within the payment window (unpaid ones that lapsed count as late);
                    rate = (on time + 3) / (counted + 4), i.e. a prior of 3 of 4;
                    50 % or less = 0 points, 100 % = 20
disputes        15  provider: disputes lost (full refund) 1, partly lost (partial refund) ½,
                    still open ½; enterprise: disputes rejected (no refund) 1, partly
                    upheld ½; rate = weighted disputes / (accepted orders + 5);
                    0 % = 15 points, 20 % or more = 0
cancellations   10  provider: orders declined (by the institution or for not answering in
                    time) or cancelled after acceptance, out of paid orders; enterprise:
                    orders cancelled after paying and before acceptance, out of paid orders;
                    rate = cancelled / (paid + 5); 0 % = 10 points, 30 % or more = 0
response         5  provider: hours from payment to acceptance; enterprise: hours from
                    delivery to completion (answering the delivery; auto-completion after
                    AUTO_COMPLETE_DAYS counts in full); average blended with 3 orders at the
                    prior (24 h / 48 h); 0 h = 5 points, 72 h / 168 h or more = 0
history         10  5 × min(1, completed orders / 20) + 5 × min(1, days on the platform / 730)
=============  ===  ===========================================================================

Each part is rounded to one decimal; the score is their sum rounded half up. Levels:
AAA ≥ 90, AA ≥ 80, A ≥ 70, B ≥ 55, C below 55.

The prior: an organisation without history is neither trusted nor distrusted. Its rating
counts as 3.5★, its on-time rate as 3 of 4, it has no disputes or cancellations against
it, and its response time is the prior; it has no history points. So a new verified
institution scores 69 (B) and an unverified one 54 (C): verification decides where
newcomers start, and real orders move them from there.
"""

from providers.credibility.actions import (  # noqa: F401
    ACTION_LABELS,
    actions_history,
    reinstate,
    set_enterprise_verified,
    set_watch,
    suspend,
)
from providers.credibility.gather import (  # noqa: F401
    OrgRow,
    gather,
)
from providers.credibility.queries import (  # noqa: F401
    CONSOLE_SORTS,
    Alert,
    ConsoleFilters,
    alert_threshold,
    chart_data,
    console_statement,
    history,
    level_counts,
    levels_of,
    low_credibility_alerts,
    recent_orders,
    suspended_buyer_message,
    trends,
)
from providers.credibility.score import (  # noqa: F401
    CANCEL_PRIOR_ORDERS,
    CANCEL_ZERO_AT,
    DEFAULT_ALERT_BELOW,
    DISPUTE_PRIOR_ORDERS,
    DISPUTE_ZERO_AT,
    HISTORY_FULL_DAYS,
    HISTORY_FULL_ORDERS,
    LEVEL_BADGES,
    LEVEL_DESCRIPTIONS,
    LEVELS,
    ON_TIME_FLOOR,
    ON_TIME_PRIOR,
    PART_LABELS,
    RATING_PRIOR_WEIGHT,
    RATING_PRIOR_X100,
    RESPONSE_PRIOR_HOURS,
    RESPONSE_PRIOR_ORDERS,
    RESPONSE_ZERO_AT_HOURS,
    TREND_DAYS,
    WEIGHTS,
    CredibilityInputs,
    CredibilityResult,
    Part,
    level_for,
    score,
)
from providers.credibility.store import (  # noqa: F401
    RecomputeReport,
    current,
    dirty_count,
    drain_dirty,
    mark_dirty,
    recompute,
    recompute_all,
    recompute_many,
    refresh_for_order,
    refresh_organisation,
)
