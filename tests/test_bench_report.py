"""bench/report.py rewrites only its own section of RESULTS.md."""

from __future__ import annotations

from bench.report import markdown_table, write_section


def test_sections_are_replaced_independently(tmp_path):
    path = tmp_path / "RESULTS.md"
    write_section("a", "A", "first", path)
    write_section("b", "B", "second", path)
    write_section("a", "A", markdown_table(["x", "y"], [[1, 0.123456]]), path)
    text = path.read_text()
    assert text.count("<!-- bench:a -->") == 1 and "first" not in text and "second" in text
    assert "| 1 | 0.1235 |" in text and "Machine:" in text
    assert text.index("bench:a") < text.index("bench:b")
