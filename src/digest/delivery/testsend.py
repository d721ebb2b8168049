"""`digest send --test`: the issue, with the test subject prefix, to a few addresses; no ledger."""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

from digest.addresses import address_key, check_address
from digest.audience.lookup import find_subscribers
from digest.audience.subscribers import Subscriber
from digest.delivery.personalize import Personalizer
from digest.store.rows import RecipientRow

if TYPE_CHECKING:  # pragma: no cover
    from digest.delivery.job import SendJob
    from digest.outgoing import OutgoingMessage
    from digest.transports.base import SendResult


def rows_for_test_send(job: "SendJob", addresses: Sequence[str], personalizer: Personalizer) -> list[RecipientRow]:
    """One row per test address: the subscriber's own fields when the list has them, else a sample
    reader's (line 0) — never another subscriber's, since a test often goes to a rendering service."""
    for address in addresses:  # named as typed: it came from --test, not from the list
        check_address(address, "check the address given to --test", where="--test ")
    wanted = {address_key(a): a for a in addresses}
    found: dict[str, Subscriber] = {}
    if job.list_path.exists():
        found, _ = find_subscribers(job.list_path, list(wanted.values()), tags=job.tags)
    rows = []
    for i, (key, address) in enumerate(wanted.items(), start=1):
        sub = found.get(key) or personalizer.sample_reader(address)
        rows.append(RecipientRow(id=i, key=key, email=sub.email if key in found else address, name=sub.name,
                                 fields=dict(sub.fields), tags=tuple(sub.tags), line=sub.line))
    return rows


def send_test(job: "SendJob", addresses: Sequence[str]) -> list[tuple["OutgoingMessage", "SendResult", bool]]:
    """Send the issue with the test subject prefix to `addresses`; the ledger is not touched.

    (message, result, on the list) for each: False when a sample reader's fields were used."""
    personalizer = Personalizer(job.rendered, job.settings, job.signer,
                                subject_prefix=job.settings.send.test_subject_prefix, source=job.list_path)
    transport = job.transport_class()(job.settings, connections=1)
    rows = rows_for_test_send(job, addresses, personalizer)
    built = job.builder(personalizer, needs_mime=transport.needs_mime)(rows)
    failed = [m for m in built if isinstance(m, BaseException)]
    if failed:
        raise failed[0]
    with transport:
        results = transport.send_batch(built)
    return [(msg, res, row.line > 0) for msg, res, row in zip(built, results, rows)]
