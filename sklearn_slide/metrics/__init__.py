"""Ranking metrics and scorers for extreme multi-label classification.

Metrics (definitions of the Extreme Classification Repository):
:func:`precision_at_k`, :func:`recall_at_k`, :func:`ndcg_at_k`,
:func:`psprecision_at_k`, :func:`psndcg_at_k`, with
:func:`inverse_propensity` for the propensity-scored ones.

Scorers for ``GridSearchCV`` and cross-validation, computed from one
``predict_topk`` call: :func:`xmc_scorer` (a dict of P@k, nDCG@k, PSP@k) and
the single-metric ``*_scorer`` functions.
"""

from ._ranking import (
    inverse_propensity,
    ndcg_at_k,
    precision_at_k,
    psndcg_at_k,
    psprecision_at_k,
    recall_at_k,
)
from ._scorers import (
    ndcg_at_k_scorer,
    precision_at_k_scorer,
    psndcg_at_k_scorer,
    psprecision_at_k_scorer,
    recall_at_k_scorer,
    xmc_scorer,
)

__all__ = [
    "inverse_propensity",
    "ndcg_at_k",
    "ndcg_at_k_scorer",
    "precision_at_k",
    "precision_at_k_scorer",
    "psndcg_at_k",
    "psndcg_at_k_scorer",
    "psprecision_at_k",
    "psprecision_at_k_scorer",
    "recall_at_k",
    "recall_at_k_scorer",
    "xmc_scorer",
]
