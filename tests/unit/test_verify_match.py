"""`verify`'s matching of created rows to the location's messages, and its report section."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from importer.report.pages import render_html
from importer.report.summaries import read_results_summary
from importer.run.verify import Line, match
from importer.state.results import RESULT_COLUMNS


def row(n: int, message_id: str, **fields: str) -> dict[str, str]:
    base = {
        "row": str(n),
        "outcome": "created",
        "message_id": message_id,
        "conversation_id": f"cv{n}",
        "alt_id": f"CA{n}",
        "to": "+15035550001",
        "from": "+15037081210",
        "status": "completed",
        "date": "2025-01-02T10:00:00.000Z",
        "direction": "outbound",
        "contact_id": f"ct{n}",
    }
    base.update(fields)
    return base


def message(mid: str, n: int, *, alt: bool = True, **fields: Any) -> dict[str, Any]:
    found: dict[str, Any] = {
        "id": mid,
        "conversationId": f"cv{n}",
        "contactId": f"ct{n}",
        "dateAdded": "2025-01-02T10:00:00.000Z",
        "direction": "outbound",
        "meta": {"callStatus": "completed"},
    }
    if alt:
        found["altId"] = f"CA{n}"
    found.update(fields)
    return found


def verdicts(lines: list[Line]) -> dict[int, str]:
    return {line.row: line.verdict for line in lines}


def test_each_created_row_is_found_missing_twice_or_different() -> None:
    created = [row(1, "m1"), row(2, "m2"), row(3, "m3"), row(4, "m4"), row(5, "m5")]
    messages = [
        message("m1", 1),
        message("m3", 3),
        message("m3b", 3),  # posted twice: another message with its altId
        message("m4", 4, dateAdded="2025-01-02T11:00:00.000Z"),
        message("m5", 5),
        message("m5b", 5, alt=False),  # twice, without altId: same conversation and second
    ]
    lines = match(created, messages)
    assert verdicts(lines) == {1: "found", 2: "missing", 3: "twice", 4: "differs", 5: "twice"}
    assert lines[3].differs == "date 2025-01-02T11:00:00.000Z"
    assert lines[2].found_ids == ("m3", "m3b")


def test_a_message_counts_once_for_two_rows_alike() -> None:
    # Two calls at the same second in one conversation, no altIds shown: one message each.
    created = [row(1, "m1", alt_id=""), row(2, "m2", alt_id="", conversation_id="cv1")]
    messages = [message("m1", 1, alt=False), message("m2", 1, alt=False)]
    assert verdicts(match(created, messages)) == {1: "found", 2: "found"}


def test_the_report_shows_what_verify_found(tmp_path: Path) -> None:
    results = tmp_path / "out.csv"
    results.write_text(
        ",".join(RESULT_COLUMNS)
        + "\n1,created,m1,cv1,201,1,,CA1,+15035550001,+15037081210,completed,"
        "2025-01-02T10:00:00.000Z,outbound,ct1\n"
    )
    (tmp_path / "out.verify.csv").write_text(
        "row,verdict,message_id,found_ids,differs,alt_id,date,direction,status,conversation_id\n"
        "1,missing,m1,,,CA1,2025-01-02T10:00:00.000Z,outbound,completed,cv1\n"
    )
    page = render_html(read_results_summary(results))
    assert "Verified in HighLevel" in page and "1 missing" in page
    assert "<td>1</td><td>missing</td>" in page


def test_legs_of_a_shared_export_id_are_matched_in_their_group_whatever_their_altids() -> None:
    # The run found each leg by fields in the group `CA1`: leg 1 holds the message sent as
    # `CA1~...`, leg 2 the one sent as `CA1`; neither is "twice".
    late = "2025-01-02T11:00:00.000Z"
    created = [row(1, "m2", alt_id="CA1", conversation_id="cv1", contact_id="ct1"),
               row(2, "m1", alt_id="CA1~0123456789ab", conversation_id="cv1",
                   contact_id="ct1", date=late)]  # fmt: skip
    messages = [message("m1", 1, dateAdded=late), message("m2", 1, altId="CA1~5d0ae0129561")]
    assert verdicts(match(created, messages)) == {1: "found", 2: "found"}
    extra = message("m3", 1, altId="CA1~5d0ae0129561")  # a leg posted twice
    assert verdicts(match(created, [*messages, extra])) == {1: "twice", 2: "found"}


def test_a_message_with_an_altid_no_row_holds_and_the_rows_fields_is_a_second_copy() -> None:
    # An earlier import of the same call under an older `ci-` altId: posted twice.
    created = [row(1, "m1")]
    older = message("m0", 1, altId="ci-0123456789abcdef0123")
    assert verdicts(match(created, [message("m1", 1), older])) == {1: "twice"}
    assert verdicts(match(created, [older])) == {1: "found"}


def test_cells_the_results_writer_made_spreadsheet_safe_read_back_as_they_were() -> None:
    import pandas as pd

    from importer.state.results import as_written, spreadsheet_safe

    values = ["-x1", "=x2", "+x3", "@x4", "CA1", "+1 503 555 0001", "'quoted"]
    assert [as_written(c) for c in spreadsheet_safe(pd.Series(values))] == values
