"""Objections and what followed: the figures API, its schema, the XLSX sheet, the dashboard
table, and the supervisor call list's tag filter."""

from __future__ import annotations

import io
import re
import zipfile
from dataclasses import fields
from datetime import UTC, datetime

import pytest

from callcenter.calls.model import AgentLeg, Disposition
from callcenter.reports.figures import OBJECTION_TAGS, ObjectionFigures
from callcenter.store import queries, users
from callcenter.store.models_speech import CallTag

T0 = datetime(2026, 11, 10, 7, 0, tzinfo=UTC).timestamp()
DAY = "from=2026-11-10&to=2026-11-10"


@pytest.fixture
def objections(factory, make_call):
    """Three objection calls: one booked on the call, one with two objections and a booking
    10 days later, one transferred from 101 to 102; and a call with no tag."""

    def answered(start: float, caller: str, agent: str, last_agent: str | None = None):
        return make_call(
            start_ts=T0 + start,
            caller=caller,
            disposition=Disposition.ANSWERED,
            agent=agent,
            last_agent=last_agent or agent,
            queue_wait_s=2.0,
            talk_s=60.0,
            end_ts=T0 + start + 63,
            legs=(AgentLeg(agent, None, T0 + start, T0 + start + 3, T0 + start + 63, "answered"),),
        )

    booked = answered(0, "89160000001", "101")
    two = answered(600, "89160000002", "101")
    transfer = answered(1200, "89160000003", "101", last_agent="102")
    untagged = answered(1800, "89160000004", "102")
    later = answered(10 * 86400, "89160000002", "101")
    with factory.begin() as s:
        for call in (booked, two, transfer, untagged, later):
            queries.persist_call(s, call=call)
        now = datetime.now(UTC)
        for call, tag in (
            (booked, "price_objection"),
            (two, "price_objection"),
            (two, "thinking"),
            (transfer, "fear"),
        ):
            s.add(CallTag(linkedid=call.linkedid, tag=tag, source="tagger", created_at=now))
        users.record_outcome(
            s,
            linkedid=booked.linkedid,
            operator="anna",
            outcome="booked",
            detail="2026-11-12",
            note=None,
            at=datetime.fromtimestamp(T0 + 60, UTC),
        )
        s.add(CallTag(linkedid=later.linkedid, tag="booked", source="tagger", created_at=now))
    return {"booked": booked, "two": two, "transfer": transfer, "untagged": untagged}


def test_figures_api_has_what_followed_each_objection(supervisor_client, objections):
    for days, won_later in ((14, 1), (7, 0)):
        body = supervisor_client.get(f"/api/v1/reports/figures?{DAY}&win_back_days={days}")
        assert body.status_code == 200
        data = body.get_json()
        assert [o["tag"] for o in data["objections"]] == list(OBJECTION_TAGS)
        price = next(o for o in data["objections"] if o["tag"] == "price_objection")
        assert (price["calls"], price["booked_on_call"], price["won_back_later"]) == (
            2,
            1,
            won_later,
        )
        total = data["objections_total"]
        assert (total["tag"], total["calls"], total["won_back"]) == ("all", 3, 1 + won_later)
        assert total["won_back"] + total["still_open"] + total["lost"] == 3
        agents = {a["agent"]: a for a in data["agents"]}
        # The transfer counts for 102, who had the caller last.
        assert (agents["101"]["objections"], agents["101"]["objections_booked"]) == (
            2,
            1 + won_later,
        )
        assert (agents["102"]["objections"], agents["102"]["objections_booked"]) == (1, 0)


def test_agents_api_carries_the_objection_columns(supervisor_client, objections):
    data = supervisor_client.get(f"/api/v1/reports/agents?{DAY}").get_json()
    assert {a["agent"]: a["objections"] for a in data["agents"]} == {"101": 2, "102": 1}


def test_openapi_describes_the_objection_figures(supervisor_client, objections):
    document = supervisor_client.get("/api/v1/openapi.json").get_json()
    schemas = document["components"]["schemas"]
    assert set(schemas["ObjectionFigures"]["properties"]) == {
        f.name for f in fields(ObjectionFigures)
    }
    body = supervisor_client.get(f"/api/v1/reports/figures?{DAY}").get_json()
    assert set(body["objections"][0]) == set(schemas["ObjectionFigures"]["properties"])
    assert set(body["agents"][0]) == set(schemas["AgentFigures"]["properties"])
    assert {"objections", "objections_total"} <= set(schemas["Figures"]["required"])
    assert schemas["Figures"]["properties"]["objections_total"] == {
        "$ref": "#/components/schemas/ObjectionFigures"
    }


def test_figures_xlsx_has_an_objections_sheet(supervisor_client, objections):
    response = supervisor_client.get(f"/api/v1/reports/figures.xlsx?{DAY}")
    assert response.status_code == 200
    with zipfile.ZipFile(io.BytesIO(response.get_data())) as book:
        workbook = book.read("xl/workbook.xml").decode("utf-8")
        sheets = re.findall(r'<sheet name="([^"]+)"', workbook)
        sheet = book.read(f"xl/worksheets/sheet{sheets.index('Возражения') + 1}.xml").decode()
    strings = re.findall(r"<t[^>]*>([^<]*)</t>", sheet)
    assert {"Возражение", "Записались позже", "Потеряны", "дорого", "Любое возражение"} <= set(
        strings
    )
    # The "all" row (row 6): 3 calls, in the column after the tag's name and code.
    assert re.search(r'<c r="C6"[^>]*><v>3</v></c>', sheet)


def test_dashboard_shows_the_objections_table(supervisor_client, objections):
    page = supervisor_client.get(f"/supervisor/dashboard?{DAY}").get_data(as_text=True)
    assert "Возражения и что было дальше" in page
    row = re.search(r'<tr data-objection="price_objection">(.*?)</tr>', page, re.S)
    assert row is not None
    assert re.search(r'data-figure="calls"><a href="[^"]*tag=price_objection[^"]*">2</a>', row[1])
    assert 'data-figure="booked_on_call">1<' in row[1]
    total = re.search(r'<tr data-objection="all">(.*?)</tr>', page, re.S)
    assert total is not None and 'data-figure="calls">3<' in total[1]
    agents = re.search(r'<table class="calls" id="agent-objections">(.*?)</table>', page, re.S)
    assert agents is not None
    assert re.search(r'data-agent="102">.*?data-figure="objections">1<', agents[1], re.S)


def test_supervisor_call_list_filters_by_tag(supervisor_client, objections):
    page = supervisor_client.get(f"/supervisor/calls?{DAY}&tag=price_objection")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    shown = set(re.findall(r'data-linkedid="([^"]+)"', html))
    assert shown == {objections["booked"].linkedid, objections["two"].linkedid}
    assert '<option value="price_objection" selected>' in html
    every = set(
        re.findall(
            r'data-linkedid="([^"]+)"',
            supervisor_client.get(f"/supervisor/calls?{DAY}").get_data(as_text=True),
        )
    )
    assert objections["untagged"].linkedid in every and len(every) == 4


def test_supervisor_call_list_rejects_an_unknown_tag(supervisor_client):
    response = supervisor_client.get(f"/supervisor/calls?{DAY}&tag=expensive")
    assert response.status_code == 400
