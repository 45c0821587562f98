"""The oracle's own pieces, without any broker: decoding, normalising, parsing."""

from __future__ import annotations

import struct

from compat import divergences
from compat.harness import decode_properties, normalise, typed
from compat.runner import differing_labels, summary_line


def test_decode_properties_keeps_field_types_and_order():
    table = (b"\x01bI" + struct.pack(">i", 1) + b"\x01al" + struct.pack(">q", 2)
             + b"\x01xA" + struct.pack(">I", 3) + b"b\xffV")
    payload = struct.pack(">H", 0x2000 | 0x0040) + struct.pack(">I", len(table)) + table + struct.pack(">Q", 7)
    assert decode_properties(payload) == {
        "flags": "2040",
        "headers": [["b", "I:1"], ["a", "l:2"], ["x", {"A": ["b:-1", "V"]}]],
        "timestamp": 7,
    }


def test_decode_properties_reports_truncation_and_trailing_bytes():
    assert "undecodable" in decode_properties(struct.pack(">H", 0x8000) + b"\x05ab")
    assert decode_properties(struct.pack(">H", 0) + b"zz")["trailing"] == "7a7a"


def test_decode_properties_masks_timestamps_on_request():
    table = b"\x04timeT" + struct.pack(">Q", 123)
    payload = struct.pack(">H", 0x2000) + struct.pack(">I", len(table)) + table
    assert decode_properties(payload, mask_timestamps=True)["headers"] == [["time", "T:<masked>"]]


def test_normalise_replaces_run_specific_names():
    observed = {"q": "wgc.x.abcd1234.q", "gen": "amq.gen-" + "A" * 22, "tag": "ctag1." + "0" * 32}
    assert normalise(observed, "abcd1234") == {"q": "wgc.x.<T>.q", "gen": "amq.gen-<G>", "tag": "ctag1.<U>"}


def test_typed_tags_scalars_and_keeps_containers():
    assert typed({"a": [1, b"\x00", None]}) == {"a": ["int:1", "bytes:00", "NoneType:null"]}


def test_divergences_file_parses(tmp_path):
    path = tmp_path / "D.md"
    path.write_text("# x\n- `ignored`: not in section\n## Known divergences\n- `scenario_a`: because\n")
    assert divergences.load(path) == {"scenario_a": "because"}
    assert isinstance(divergences.load(), dict)


def test_differing_labels_and_summary():
    assert differing_labels([["a", 1], ["b", 2]], [["a", 1], ["b", 3], ["c", 4]]) == ["b", "c"]
    results = {"x": {"status": "identical"}, "y": {"status": "differ"}, "z": {"status": "known"}}
    assert summary_line(results) == "3 scenarios: 1 identical, 1 differ, 1 known divergences"
