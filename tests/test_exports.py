"""CSV writing: the fast path's plain cells come out exactly as neutralised cells do."""
from __future__ import annotations

from decimal import Decimal

import pytest

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


# Text a cell can hold that the CSV quoting, the formula check or COPY's text format treat
# specially, and text none of them do.
AWKWARD = ["", "plain", "a,b", 'say "hi"', "line\nbreak", "cr\rhere", "tab\there", "back\\slash", "=1+1", "+44",
           "-", "-2.50", "@me", "\tlead", "\rlead", "\nlead", "'quoted'", "é ünïcödé", "a\\nb", "\\N", " lead"]


def test_a_written_cell_is_what_csv_writer_writes_of_its_neutralised_value():
    import csv
    import io
    from datetime import datetime, timezone

    from console.exports import csv_cell, neutralise

    values = [*AWKWARD, None, Decimal("12.50"), Decimal("-1.00"), 3, 0, datetime(2026, 11, 1, 11, 31, tzinfo=timezone.utc)]
    buffer = io.StringIO()
    csv.writer(buffer).writerow(["first", *(neutralise(value) for value in values), "last"])
    assert ",".join(["first", *map(csv_cell, values), "last"]) + "\r\n" == buffer.getvalue()


def test_written_cells_are_joined_as_they_are():
    rows = [("a", '"b,c"', "'=d"), ("1", "", "2")]
    assert "".join(csv_lines(["x", "y", "z"], rows, written_cells=True)) == '\ufeffx,y,z\r\na,"b,c",\'=d\r\n1,,2\r\n'


def test_copy_text_rows_are_split_and_their_escapes_read():
    from console.exports import _split

    clean = [b"a\tb\tc\n", b"d\t\tf\n"]
    assert _split(clean) == [["a", "b", "c"], ["d", "", "f"]]
    escaped = [b"tab\\there\tline\\nbreak\tback\\\\slash\n", b"cr\\rx\t\\\\N\tplain\n"]
    assert _split(escaped) == [["tab\there", "line\nbreak", "back\\slash"], ["cr\rx", "\\N", "plain"]]


@pytest.mark.postgres_only
def test_postgresql_writes_each_cell_as_csv_cell_does(ctx):
    """cell_sql() is csv_cell() done by the database: every awkward text, a number, a
    negative number, a time with and without a fraction of a second, NULL."""
    from datetime import datetime, timezone

    from sqlalchemy import DateTime, Numeric, Text, literal, null, select

    from console.exports import cell_sql, copy_text_batches, csv_cell
    from console.extensions import db

    values = [(text, Text()) for text in AWKWARD] + [
        (Decimal("12.50"), Numeric(10, 2)), (Decimal("-1.00"), Numeric(10, 2)), (7, Numeric(10, 0)),
        (datetime(2026, 11, 1, 11, 31, tzinfo=timezone.utc), DateTime(timezone=True)),
        (datetime(2026, 11, 1, 11, 32, 7, 5000, tzinfo=timezone.utc), DateTime(timezone=True))]
    stmt = select(*(cell_sql(literal(value, kind), f"c{at}") for at, (value, kind) in enumerate(values)),
                  cell_sql(null().cast(Text()), "nothing"))
    with db.engines["order"].connect() as connection, connection.begin():
        connection.exec_driver_sql("SET LOCAL TimeZone = 'UTC'")
        rows = [row for batch in copy_text_batches(connection, stmt, 10) for row in batch]
    # (AWKWARD holds backslashes, tabs and line breaks: the rows came through the escapes.)
    assert rows == [[*(csv_cell(value) for value, _ in values), ""]]
