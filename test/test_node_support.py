"""ROS-free parts of the node: health levels for /diagnostics, camera_info pairing by stamp,
and the DDS environment choice (never overriding the user's)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from mono_depth_ros.core.dds_env import (DDS_VARIABLES, SETUPS, SHIPPED_SETUP, dds_defaults,
                                         profile_path, ros_env, setup_variables)
from mono_depth_ros.core.health import ERROR, OK, WARN, HealthMonitor, HealthThresholds
from mono_depth_ros.core.stamp_pairing import StampedBuffer

S = 10**9
LAT = {"total": {"p50": 40.0, "p95": 60.0}}


def _run(counts1, counts2, skipped2=None, latency=LAT, age=0.1, th=None):
    m = HealthMonitor(th or HealthThresholds())
    m.update(0.0, counts1, {}, latency, age)
    return m.update(2.0, counts2, skipped2 or {}, latency, age, {"model": "fastdepth"})


def test_health_ok_with_rates():
    r = _run({"received": 10, "processed": 8}, {"received": 30, "processed": 26, "dropped": 2})
    assert r.level == OK and r.message == "running"
    v = dict(r.values)
    assert v["input rate (Hz)"] == "10.00" and v["processed rate (Hz)"] == "9.00"
    assert v["drop ratio"] == "0.100" and v["latency p95 (ms)"] == "60.0"
    assert v["model"] == "fastdepth"


@pytest.mark.parametrize("kwargs, level, words", [
    (dict(counts2={"received": 20, "processed": 4, "dropped": 16}), WARN, "dropped"),
    (dict(counts2={"received": 20, "processed": 14, "skipped": 6},
          skipped2={"size_mismatch": 6}), WARN, "bad input"),
    (dict(counts2={"received": 20, "processed": 0, "skipped": 20},
          skipped2={"stale_camera_info": 20}), ERROR, "stale_camera_info=20"),
    (dict(counts2={"received": 20, "processed": 19, "skipped": 1},
          skipped2={"internal_error": 1}), ERROR, "failed inside"),
    (dict(counts2={"received": 20, "processed": 20}, age=9.0), WARN, "no input image for 9.0"),
    (dict(counts2={"received": 0}, age=None), WARN, "no input image yet"),
    (dict(counts2={"received": 20, "processed": 20},
          latency={"total": {"p50": 400.0, "p95": 900.0}}), WARN, "p95 latency 900"),
])
def test_health_levels(kwargs, level, words):
    r = _run({"received": 0}, **kwargs)
    assert r.level == level and words in r.message, r.message


def test_health_thresholds_are_honoured():
    counts = {"received": 20, "processed": 4, "dropped": 16}
    assert _run({}, counts, th=HealthThresholds(drop_warn=0.9)).level == OK
    lat = {"total": {"p50": 400.0, "p95": 900.0}}
    assert _run({}, {"received": 20, "processed": 20}, latency=lat,
                th=HealthThresholds(latency_warn_ms=0)).level == OK


def test_pairing_exact_newest_within_age_stale_missing():
    b = StampedBuffer(size=3)
    assert b.match(5 * S, 1.0)[1] == "missing_camera_info"
    b.add(10 * S, "a")
    b.add(11 * S, "b")
    assert b.match(10 * S, 0.0)[0] == "a"  # exact beats newer
    assert b.match(11 * S + S // 2, 0.5)[0] == "b"
    item, reason, detail = b.match(12 * S, 0.5)
    assert item is None and reason == "stale_camera_info" and "+1.000 s" in detail
    assert b.match(12 * S, 0.0)[1] == "stale_camera_info"
    for st in (12, 13, 14):
        b.add(st * S, st)
    assert b.match(10 * S, 0.0)[1] == "stale_camera_info"  # oldest dropped (size 3)


def test_dds_defaults_never_override_a_user_choice():
    shipped = setup_variables(SHIPPED_SETUP)
    assert dds_defaults({}) == shipped and shipped
    for var in DDS_VARIABLES:
        assert dds_defaults({var: "/my/profile.xml"}) == {}
    assert dds_defaults({"RMW_IMPLEMENTATION": "rmw_cyclonedds_cpp"}) == {}
    assert dds_defaults({"RMW_IMPLEMENTATION": "rmw_fastrtps_cpp"}) == shipped
    env = ros_env({"FASTDDS_BUILTIN_TRANSPORTS": "LARGE_DATA", "X": "1"})
    assert env == {"FASTDDS_BUILTIN_TRANSPORTS": "LARGE_DATA", "X": "1"}


def test_setups_resolve_and_unknown_names_fail():
    for name in SETUPS:
        setup_variables(name)
    assert setup_variables("xml:/a.xml") == {"FASTDDS_DEFAULT_PROFILES_FILE": "/a.xml"}
    with pytest.raises(KeyError, match="unknown DDS setup"):
        setup_variables("fast")


def test_shipped_profile_stays_reachable_from_other_hosts():
    """No interface whitelist (127.0.0.1 made the node invisible to other computers), UDPv4
    kept beside the enlarged shared memory, and a port queue that holds a VGA cloud's ~75
    fragments."""
    ns = {"d": "http://www.eprosima.com/XMLSchemas/fastRTPS_Profiles"}
    root = ET.parse(profile_path()).getroot()
    assert root.find(".//d:interfaceWhiteList", ns) is None
    kinds = {t.find("d:type", ns).text: t for t in root.iterfind(".//d:transport_descriptor", ns)}
    assert "UDPv4" in kinds and "SHM" in kinds
    assert int(kinds["SHM"].find("d:port_queue_capacity", ns).text) >= 4 * 640 * 480 * 16 // 65500
    assert int(kinds["SHM"].find("d:segment_size", ns).text) >= 4 * 640 * 480 * 16
    used = {e.text for e in root.iterfind(".//d:participant//d:userTransports/d:transport_id", ns)}
    ids = {t.find("d:transport_id", ns).text for t in kinds.values()}
    assert used == ids
