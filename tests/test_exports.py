"""CSV writing: the fast path's plain cells come out exactly as neutralised cells do."""
from __future__ import annotations

from decimal import Decimal

from console import exports
from console.exports import csv_lines


def test_plain_cells_are_neutralised_only_where_a_cell_starts_like_a_formula(monkeypatch):
    monkeypatch.setattr(exports, "ROWS_PER_WRITE", 2)  # several blocks, most of them clean
    rows = [["ORD-1", "2026-11-01T10:00:00+00:00", Decimal("12.50"), None, 3]] * 5
    rows += [["ORD-2", "=HYPERLINK(\"x\")", Decimal("-1.00"), "@me", 0], ["ORD-3", "-", None, "\nline", 1]]
    rows += [["ORD-4", "a,=b", Decimal("0"), "plain", 2]] * 3
    assert "".join(csv_lines(["a", "b", "c", "d", "e"], rows, plain_cells=True)) == \
        "".join(csv_lines(["a", "b", "c", "d", "e"], rows))
    text = "".join(csv_lines(["a"], [["=1+1"], ["+x"], ["ok"]], plain_cells=True))
    assert text.splitlines()[1:] == ["'=1+1", "'+x", "ok"]


def test_fewer_collections_nests_and_puts_the_threshold_back():
    import gc

    from console.exports import fewer_collections

    before = gc.get_threshold()
    with fewer_collections(50_000):
        with fewer_collections(50_000):
            assert gc.get_threshold()[0] == max(50_000, before[0])
        assert gc.get_threshold()[0] == max(50_000, before[0])
    assert gc.get_threshold() == before


def test_downloads_beyond_the_limit_are_refused_until_one_ends(app, auth, client, monkeypatch):
    """Each export holds database connections while it streams: past EXPORTS_AT_ONCE a
    download is refused at once with a 503 saying to wait, and a slot comes back when a
    download's response is closed, however it ended."""
    monkeypatch.setitem(app.config, "EXPORTS_AT_ONCE", 1)
    auth.login("support")
    first = client.get("/orders/export.csv", buffered=False)  # streaming: its slot is held
    assert first.status_code == 200 and exports.exports_running() == 1
    refused = client.get("/customers/export.csv")
    assert refused.status_code == 503 and refused.headers["Retry-After"]
    assert "already writing 1 download" in refused.get_data(as_text=True)
    assert exports.exports_running() == 1  # the refusal took nothing
    first.close()  # what the server does when a download ends or its client goes away
    assert exports.exports_running() == 0
    written = client.get("/customers/export.csv")
    assert written.status_code == 200 and "user_id,first_name" in written.get_data(as_text=True)
    assert exports.exports_running() == 0  # read to its end: given back before any close


def test_newest_by_keeps_each_keys_newest_row():
    """A key with one row keeps it; of several, the newest by (time, id), a missing time
    oldest."""
    from datetime import datetime

    from console.exports import newest_by

    fold = newest_by(1, 2)
    early, late = datetime(2026, 1, 1), datetime(2026, 2, 1)
    assert fold([("a", early, "1"), ("b", None, "2")]) == {"a": ("a", early, "1"), "b": ("b", None, "2")}
    rows = [("a", late, "1"), ("a", early, "9"), ("b", None, "5"), ("b", early, "1"), ("c", late, "1"),
            ("c", late, "2"), ("d", None, "1"), ("d", None, "3")]
    assert fold(rows) == {"a": ("a", late, "1"), "b": ("b", early, "1"), "c": ("c", late, "2"),
                          "d": ("d", None, "3")}
