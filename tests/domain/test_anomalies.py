"""The pure anomaly maths: spikes against a key's own baseline, off-hours, networks, and the
IP-to-country table."""

from __future__ import annotations

import ipaddress

from hypothesis import given
from hypothesis import strategies as st

from keyplane.domain.anomalies import Thresholds, network_of, off_hours, spike
from keyplane.domain.geoip import GeoTable

counts = st.lists(st.integers(0, 10_000), min_size=24, max_size=168)


@given(history=counts, current=st.integers(0, 100_000))
def test_a_spike_is_over_both_the_floor_and_factor_times_the_mean(
    history: list[int], current: int
) -> None:
    found = spike(current, history, 5.0, 100, 24)
    mean = sum(history) / len(history)
    assert (found is not None) == (current > max(5 * mean, 100))
    if found is not None:
        assert found.current == current


@given(history=counts, current=st.integers(0, 100_000), more=st.integers(1, 1000))
def test_more_requests_never_undo_a_spike(history: list[int], current: int, more: int) -> None:
    if spike(current, history, 5.0, 100, 24) is not None:
        assert spike(current + more, history, 5.0, 100, 24) is not None


@given(history=st.lists(st.integers(0, 10), max_size=23), current=st.integers(0, 10**6))
def test_no_baseline_no_spike(history: list[int], current: int) -> None:
    assert spike(current, history, 5.0, 100, 24) is None


def test_the_floor_keeps_quiet_keys_quiet() -> None:
    assert spike(99, [0] * 48, 5.0, 100, 24) is None
    assert spike(101, [0] * 48, 5.0, 100, 24) is not None
    assert spike(400, [100] * 48, 5.0, 100, 24) is None  # a busy key's normal
    assert spike(501, [100] * 48, 5.0, 100, 24) is not None


def test_off_hours_against_the_keys_own_profile() -> None:
    t = Thresholds()
    office = [0] * 8 + [50] * 10 + [0] * 6  # 09:00-18:00 only
    assert off_hours(30, 3, office, t) is not None
    assert off_hours(30, 10, office, t) is None
    assert off_hours(5, 3, office, t) is None  # below the floor
    assert off_hours(30, 3, [1] * 24, t) is None  # too little history to judge
    around_the_clock = [20] * 24
    assert off_hours(30, 3, around_the_clock, t) is None


@given(st.ip_addresses(v=4), st.integers(0, 65535))
def test_v4_addresses_in_one_slash16_share_a_network(ip: ipaddress.IPv4Address, low: int) -> None:
    sibling = ipaddress.IPv4Address((int(ip) & 0xFFFF0000) | low)
    assert network_of(str(ip)) == network_of(str(sibling))
    assert network_of(str(ip)) == str(ipaddress.ip_network(f"{ip}/16", strict=False))


@given(st.ip_addresses(v=6))
def test_v6_networks_are_slash48(ip: ipaddress.IPv6Address) -> None:
    network = network_of(str(ip))
    assert network is not None
    if ip.ipv4_mapped is None:
        assert network.endswith("/48")
        assert ip in ipaddress.ip_network(network)


def test_not_an_address_has_no_network() -> None:
    assert network_of("unknown") is None
    assert network_of("") is None


def test_geo_table_lookups() -> None:
    table = GeoTable.from_rows(
        [
            "start_ip,end_ip,country",
            "10.0.0.0,10.255.255.255,de",
            "192.0.2.0,192.0.2.255,FR",
            "2001:db8::,2001:db8:ffff:ffff:ffff:ffff:ffff:ffff,NL",
            "garbage",
            "1.2.3.4,1.2.3.0,XX",  # end before start: skipped
        ]
    )
    assert len(table) == 3
    assert table.country("10.1.2.3") == "DE"
    assert table.country("192.0.2.255") == "FR"
    assert table.country("192.0.3.0") is None
    assert table.country("9.255.255.255") is None
    assert table.country("2001:db8::1") == "NL"
    assert table.country("::ffff:10.0.0.1") == "DE"
    assert table.country("1.2.3.2") is None
    assert table.country("nope") is None


@given(
    starts=st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=30, unique=True),
    probe=st.integers(0, 2**32 - 1),
)
def test_geo_table_agrees_with_a_linear_scan(starts: list[int], probe: int) -> None:
    starts.sort()
    ranges = []
    for i, start in enumerate(starts):
        end = (starts[i + 1] - 1) if i + 1 < len(starts) else start
        end = start + (end - start) // 2  # leave gaps between ranges
        ranges.append((start, end, f"C{i}"))
    rows = [f"{ipaddress.IPv4Address(s)},{ipaddress.IPv4Address(e)},{c}" for s, e, c in ranges]
    expected = next((c for s, e, c in ranges if s <= probe <= e), None)
    assert GeoTable.from_rows(rows).country(str(ipaddress.IPv4Address(probe))) == expected
