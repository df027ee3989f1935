"""The conformance suite: the tests `pytest --pyargs conformance` runs against a target.

One module per area (files, create, lifecycle, records, validation, cancel, expiry,
pagination, auth, isolation, storage layout, generated input). Every test states its
requirement in its docstring with MUST/SHOULD wording and carries a capability marker; the
batches several tests read are the scenarios of `conformance.suite._scenarios`, submitted
before any test runs. Tests reach the target only through the `api` clients, `control` and
the `waiter`; every response is validated (`conformance.invariants`).
"""

from . import _scenarios as _scenarios  # registers the scenarios

__all__: list[str] = []
