"""The conformance suite: the tests `pytest --pyargs conformance` runs against a target.

One module per area (files, create, lifecycle, records, validation, cancel, expiry,
pagination, auth, isolation, webhooks, storage layout, generated input), plus one per
dialect for what only that dialect says (`test_scaigrid`). Every test states its
requirement in its docstring with MUST/SHOULD wording and carries a capability marker; the
batches several tests read are the scenarios of `conformance.suite._scenarios`, submitted
before any test runs. Tests reach the target only through the `api` clients, `control` and
the `waiter`, and read batches through the profile's dialect adapter
(`conformance.dialects`); every response is validated (`conformance.invariants`).
"""

from . import _scenarios as _scenarios  # registers the scenarios

__all__: list[str] = []
