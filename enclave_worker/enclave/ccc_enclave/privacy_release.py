"""The enclave's side of differential privacy: record exact clipped totals, release only noise.

Why in the enclave: it is the only component that knows how many cats an image holds. Letting the
parent (untrusted, operator-controlled) aggregate counts would mean giving it the counts. So the
enclave keeps `ccc_enclave.dp.ContentAggregates` in memory and answers a `privacy_release`
request with `PrivateAggregator.release_all`: Laplace noise calibrated to the per-image clip, and a
per-tenant, per-day epsilon budget that refuses further releases once spent. The parent cannot
choose the tenant, the epsilon or the noise: the request has no parameters.

Known limit (docs/observability.md): the budget ledger lives in enclave memory, so a restarted
enclave starts a fresh ledger (and fresh, smaller totals), and each enclave of a fleet has its own.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime

from ccc_enclave.dp import ContentAggregates, PrivateAggregator
from ccc_enclave.protocol.privacy_messages import MAX_RELEASES, PrivacyRelease, PrivacyReleaseReply


def utc_today() -> date:
    return datetime.now(UTC).date()


class PrivacyReleaser:
    """Answers release requests from the aggregates the job pipeline records into."""

    def __init__(self, aggregates: ContentAggregates, aggregator: PrivateAggregator,
                 today: Callable[[], date] = utc_today) -> None:
        self.aggregates = aggregates
        self._aggregator = aggregator
        self._today = today

    def release(self, request_id: str) -> PrivacyReleaseReply:
        batch = self._aggregator.release_all(self.aggregates, self._today(), limit=MAX_RELEASES)
        releases = tuple(
            PrivacyRelease(tenant=r.tenant, day=r.day.isoformat(), metric=r.metric, value=round(r.value, 6),
                           epsilon=r.epsilon, scale=r.scale)
            for r in batch.releases
        )
        return PrivacyReleaseReply(request_id=request_id, releases=releases, refused=batch.refused)
