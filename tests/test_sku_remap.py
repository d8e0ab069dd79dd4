"""Remapping unmapped lines: the lines of orders flagged with an open unmapped-SKU anomaly
take the product the mapping now gives their platform's SKU, and no other line changes."""

from __future__ import annotations

from sqlalchemy import select

from tests.test_anomaly_conditions import NOW, platform_order
from waimai_bridge.settings import AnomalyRule
from waimai_bridge.store.anomalies import remap_unmapped
from waimai_bridge.store.database import Database
from waimai_bridge.store.tables import Anomaly, OrderItem, PlatformOrder, SkuMapping

Line = tuple[str | None, str | None]
"""A line's SKU code and product (None: unmapped)."""


def flagged(name: str, *lines: Line, platform: str = "testpay") -> PlatformOrder:
    """A stored order (of ``platform``) with ``lines``."""
    placed = platform_order(name, order={}, platform=platform)
    assert placed.order is not None
    placed.order.items = [
        OrderItem(
            line=number,
            sku_code=sku,
            product_id=product,
            unmapped=product is None,
            name=f"line {number}",
            quantity=1,
            unit_original_fen=100,
            unit_paid_fen=100,
        )
        for number, (sku, product) in enumerate(lines, 1)
    ]
    return placed


def remapped(database: Database, *orders: PlatformOrder, kinds: dict[str, str]) -> int:
    """``orders`` stored with their anomaly (of ``kinds[name]``, resolved when it ends in
    ``!``) and the mapping; ``remap_unmapped``'s count."""
    with database.transaction() as session:
        session.add_all(orders)
        session.add_all(
            [
                SkuMapping(platform="testpay", sku_code="A", product_id="P-A", updated_at_ms=NOW),
                SkuMapping(platform="otherpay", sku_code="A", product_id="Q-A", updated_at_ms=NOW),
                SkuMapping(platform="testpay", sku_code="B", product_id="P-B", updated_at_ms=NOW),
            ]
        )
        session.flush()
        for placed in orders:
            kind = kinds[placed.platform_order_id]
            session.add(
                Anomaly(
                    platform_order_pk=placed.id, order_id=placed.order_id,
                    kind=kind.rstrip("!"), detail="a line's SKU maps to no product",
                    created_at_ms=NOW, resolved_at_ms=NOW if kind.endswith("!") else None,
                )
            )  # fmt: skip
    with database.transaction() as session:
        return remap_unmapped(session)


def products(database: Database) -> dict[tuple[str, int], tuple[str | None, bool]]:
    with database.transaction() as session:
        rows = session.execute(
            select(PlatformOrder.platform_order_id, OrderItem.line, OrderItem.product_id,
                   OrderItem.unmapped)
            .join(OrderItem, OrderItem.order_id == PlatformOrder.order_id)
        )  # fmt: skip
        return {(order, line): (product, unmapped) for order, line, product, unmapped in rows}


def test_a_flagged_orders_unmapped_lines_take_their_platforms_product(database: Database) -> None:
    count = remapped(
        database,
        flagged("T", ("A", None), ("B", None), ("C", None), (None, None), ("A", "KEPT")),
        flagged("O", ("A", None), platform="otherpay"),
        kinds={"T": "unmapped_sku", "O": "unmapped_sku"},
    )
    assert count == 3
    assert products(database) == {
        ("T", 1): ("P-A", False),
        ("T", 2): ("P-B", False),
        ("T", 3): (None, True),  # no mapping for C yet
        ("T", 4): (None, True),  # no SKU at all
        ("T", 5): ("KEPT", False),  # mapped already: left as it is
        ("O", 1): ("Q-A", False),  # the mapping of the order's own platform
    }


def test_lines_of_orders_without_an_open_unmapped_anomaly_stay_as_they_are(
    database: Database,
) -> None:
    count = remapped(
        database,
        flagged("RESOLVED", ("A", None)),
        flagged("OTHER-KIND", ("A", None)),
        kinds={"RESOLVED": "unmapped_sku!", "OTHER-KIND": AnomalyRule.TOTAL_MISMATCH.value},
    )
    assert count == 0
    assert products(database) == {("RESOLVED", 1): (None, True), ("OTHER-KIND", 1): (None, True)}
