"""`ccc cost idle`: each idle charge is read from the template and priced from the table."""

from __future__ import annotations

import pytest

from ccc.cost.errors import CostError
from ccc.cost.idle import price_idle
from ccc.cost.prices import US_EAST_1, price_table, request_cost_per_job
from tests.support.cost_templates import template

HOURS = US_EAST_1.hours_per_month


def _items(report) -> dict[str, float]:
    return {item.kind: item.monthly_usd for item in report.items}


def test_interface_endpoints_are_billed_per_endpoint_per_az_hour() -> None:
    report = price_idle(template(interface_endpoints=9, azs=2, public=False), US_EAST_1)
    assert _items(report)["endpoints"] == pytest.approx(9 * 2 * 0.01 * HOURS)
    assert report.through_endpoints and not report.host.public_ipv4


def test_public_mode_idles_without_network_charges_and_bills_ipv4_per_running_host() -> None:
    report = price_idle(template(interface_endpoints=0), US_EAST_1)
    items = _items(report)
    assert items["endpoints"] == 0 and items["public-ipv4"] == 0
    assert report.host.public_ipv4
    gp3_hour = 30 * US_EAST_1.gp3_gb_month / HOURS
    assert report.host.hourly_usd == pytest.approx(0.17 + gp3_hour + 0.005)


def test_each_item_and_the_total() -> None:
    report = price_idle(template(keys=2, dashboards=1, alarms=3, warm_pool=1, root_gib=30), US_EAST_1)
    items = _items(report)
    assert items["kms-keys"] == 2.0
    assert items["alarms"] == pytest.approx(0.30)
    assert items["warm-pool"] == pytest.approx(30 * 0.08)
    runs = HOURS * 60
    assert items["schedules"] == pytest.approx(runs * (0.2e-6 + 0.2 * 0.5 * 0.0000133334), rel=1e-3)
    assert report.monthly_usd == round(sum(items.values()), 2)
    assert report.monthly_usd_without("warm-pool") == round(report.monthly_usd - items["warm-pool"], 2)


def test_dashboards_are_free_within_the_accounts_first_three() -> None:
    assert _items(price_idle(template(dashboards=1), US_EAST_1))["dashboards"] == 0
    assert _items(price_idle(template(dashboards=1), US_EAST_1, account_dashboards=3))["dashboards"] == 3.0
    assert _items(price_idle(template(dashboards=2), US_EAST_1, account_dashboards=2))["dashboards"] == 3.0


def test_warm_pool_at_zero_holds_max_prepared_capacity() -> None:
    assert price_idle(template(warm_pool=2), US_EAST_1).warm_pool_size == 2
    assert price_idle(template(warm_pool=None), US_EAST_1).warm_pool_size == 0
    assert _items(price_idle(template(warm_pool=None), US_EAST_1))["warm-pool"] == 0


def test_refusals() -> None:
    with pytest.raises(CostError, match="region"):
        price_table("eu-west-1")
    with pytest.raises(CostError, match="no on-demand price"):
        price_idle(template(instance_type="p5.48xlarge"), US_EAST_1)
    broken = template()
    broken["Resources"]["Schedule"]["Properties"]["ScheduleExpression"] = "cron(0 * * * ? *)"
    with pytest.raises(CostError, match="schedule"):
        price_idle(broken, US_EAST_1)


def test_per_job_requests_cost_more_through_endpoints() -> None:
    direct = request_cost_per_job(US_EAST_1, through_endpoints=False)
    assert 0.00003 < direct < 0.0001  # docs/deploy.md: ~$0.00008 per job
    assert request_cost_per_job(US_EAST_1, through_endpoints=True) == pytest.approx(direct + 0.003 * 0.01)
