"""Lyrics and scene planning: the OpenAI requests as documented, their failure modes, the
fallback planner, and the plan rules (shot budget, reuse, no take twice in a row, +-2 s)."""

from __future__ import annotations

import json

import httpx
import pytest

from functions.video import llm_planner, planner, rule_planner
from functions.video.lyrics import Lyrics, transcribe_lyrics
from functions.video.plan import MAX_BOUNDARY_SHIFT_S, LLMPlan, VideoPlan, without_shots
from tests.functions.test_video_providers import (
    OPENAI_KEY,
    FakeOpenAI,
    chat_answer,
    multipart_fields,
    record_sleeps,
    transcription_answer,
)


@pytest.fixture
def sleeps(monkeypatch) -> list[float]:
    return record_sleeps(monkeypatch)


PROMPT = "A lone dancer in a neon city at night, rain on the streets, chasing a red light."
SECTIONS = ["intro", "verse", "chorus", "verse", "chorus", "bridge", "chorus", "outro"]
TRANSCRIBE = "/v1/audio/transcriptions"
CHAT = "/v1/chat/completions"


def song_timing(slots_per_section: int = 4, slot_s: float = 6.0, bpm: float = 120.0) -> dict:
    """A 3-minute song's timing: 8 sections x 4 slots of 6 s, beats every 0.5 s."""
    slots, t = [], 0.0
    for sec in SECTIONS:
        for _ in range(slots_per_section):
            slots.append(
                {
                    "index": len(slots),
                    "start_s": t,
                    "end_s": t + slot_s,
                    "section": sec,
                    "energy": 0.9 if sec == "chorus" else 0.4,
                }
            )
            t += slot_s
    beats = [round(i * 60.0 / bpm, 3) for i in range(int(t * bpm / 60.0))]
    return {
        "slots": slots,
        "cut_candidates_s": beats,
        "tempo_bpm": bpm,
        "duration_s": t,
        "sections": [],
        "key": "A minor",
    }


def assert_plan_rules(plan: VideoPlan, max_shots: int, timing: dict) -> None:
    assert len(plan.shots) <= max_shots
    ids = [s.shot_id for s in plan.slots]
    assert all(a != b for a, b in zip(ids, ids[1:], strict=False)), "a take shown twice in a row"
    assert set(ids) <= {s.id for s in plan.shots}
    assert plan.slots[0].start_s == 0.0 and plan.slots[-1].end_s == timing["duration_s"]
    for a, b in zip(plan.slots, plan.slots[1:], strict=False):
        assert a.end_s == b.start_s  # the slots tile the song


# -- lyrics ------------------------------------------------------------------------------------


def test_transcription_request_matches_the_documented_api(tmp_path):
    song = tmp_path / "song.mp3"
    song.write_bytes(b"ID3" + b"\0" * 64)
    words = [
        ("city", 1.0, 1.4),
        ("lights", 1.5, 2.0),
        ("burning", 2.1, 2.6),
        ("bright", 2.7, 3.1),
        ("tonight", 3.2, 3.9),
        ("we", 4.0, 4.1),
        ("run", 4.2, 4.6),
    ]
    fake = FakeOpenAI().on(TRANSCRIBE, transcription_answer(words, 30.0))
    lyrics = transcribe_lyrics(song, 30.0, client=fake.client(), model="whisper-1")
    (req,) = fake.to(TRANSCRIBE)
    assert req.method == "POST" and req.url.host == "api.openai.com"
    assert req.headers["authorization"] == f"Bearer {OPENAI_KEY}"
    fields = multipart_fields(req)
    assert fields["model"] == "whisper-1"
    assert fields["response_format"] == "verbose_json"  # word timestamps need verbose_json
    assert fields["timestamp_granularities[]"] == "word"
    assert fields["file"] == ("song.mp3", song.read_bytes())
    assert lyrics.status == "transcribed"
    assert lyrics.words[0] == {"word": "city", "start_s": 1.0, "end_s": 1.4}
    assert lyrics.lines()[0]["text"].startswith("city lights burning")
    assert lyrics.billed_audio_s == 30.0


def test_a_few_stray_words_mean_instrumental(tmp_path, sleeps):
    song = tmp_path / "song.wav"
    song.write_bytes(b"RIFF0000WAVE")
    fake = FakeOpenAI().on(
        TRANSCRIBE, transcription_answer([("Thank", 10.0, 10.3), ("you.", 10.3, 10.6)], 180.0)
    )
    lyrics = transcribe_lyrics(song, 180.0, client=fake.client(), model="whisper-1")
    assert lyrics.status == "instrumental" and lyrics.words == []
    assert "instrumental" in lyrics.reason


def test_transcription_retries_5xx_and_timeouts_then_gives_up_without_failing(tmp_path, sleeps):
    song = tmp_path / "song.wav"
    song.write_bytes(b"RIFF0000WAVE")
    req = httpx.Request("POST", "https://api.openai.com/v1/audio/transcriptions")
    fake = FakeOpenAI().on(
        TRANSCRIBE,
        httpx.Response(503, json={"error": {"message": "overloaded"}}),
        httpx.ReadTimeout("timed out", request=req),
        httpx.Response(500, json={"error": {"message": "oops"}}),
    )
    lyrics = transcribe_lyrics(song, 30.0, client=fake.client(), model="whisper-1")
    assert len(fake.to(TRANSCRIBE)) == 3
    assert sleeps == [2.0, 4.0]
    assert lyrics.status == "failed" and "3 attempts" in lyrics.reason


def test_no_key_means_no_lyrics_and_says_so(tmp_path):
    lyrics = transcribe_lyrics(tmp_path / "x.wav", 30.0, api_key="")
    assert lyrics.status == "skipped" and "OpenAI key" in lyrics.reason


# -- the LLM planner ----------------------------------------------------------------------------


def llm_plan_json(
    timing: dict, *, shots: int = 4, shift_s: float = 0.0, repeat: bool = False
) -> str:
    n = len(timing["slots"])
    plan = {
        "title": "Red Light",
        "logline": "A dancer chases a light",
        "style": "neon noir",
        "mood": "dark",
        "characters": [{"id": "c1", "name": "Mia", "description": "dancer, silver jacket"}],
        "scenes": [
            {
                "id": "s1",
                "setting": "rooftop",
                "description": "wet rooftop",
                "palette": ["#0b0c10", "#c3073f"],
                "lighting": "neon",
                "metaphor": "a light to chase",
                "character_ids": ["c1", "ghost"],
            },
            {
                "id": "s2",
                "setting": "street",
                "description": "street",
                "palette": ["not-a-colour"],
                "lighting": "rain",
                "metaphor": "reflections",
                "character_ids": [],
            },
        ],
        "shots": [
            {
                "id": f"sh{k}",
                "scene_id": "s1" if k % 2 else "s2",
                "prompt": f"shot {k}",
                "camera_move": "push_in",
                "motion": "high",
                "character_ids": ["c1"],
            }
            for k in range(shots)
        ],
        "slots": [
            {
                "index": i,
                "shot_id": "sh0" if repeat else f"sh{i % shots}",
                "variant": "as_is",
                "transition_in": "fade" if i == 0 else "cut",
                "start_shift_s": shift_s if i == 5 else 0.0,
            }
            for i in range(n)
        ],
    }
    return json.dumps(plan)


def test_planner_request_uses_a_strict_json_schema(sleeps):
    timing = song_timing()
    fake = FakeOpenAI().on(CHAT, chat_answer(llm_plan_json(timing)))
    usage: list = []
    plan = llm_planner.plan_with_llm(
        PROMPT,
        timing,
        Lyrics("skipped", "none"),
        8,
        client=fake.client(),
        model="gpt-4o-mini",
        usage=usage,
    )
    (req,) = fake.to(CHAT)
    body = json.loads(req.content)
    assert req.headers["authorization"] == f"Bearer {OPENAI_KEY}"
    assert body["model"] == "gpt-4o-mini"
    assert [m["role"] for m in body["messages"]] == ["system", "user"]
    assert (
        "director" in body["messages"][0]["content"]
        and "at most 8 shots" in body["messages"][0]["content"]
    )
    assert json.loads(body["messages"][1]["content"])["prompt"] == PROMPT
    fmt = body["response_format"]
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["strict"] is True

    def objects(node):
        if isinstance(node, dict):
            if node.get("type") == "object":
                yield node
            for v in node.values():
                yield from objects(v)
        elif isinstance(node, list):
            for v in node:
                yield from objects(v)

    schema = fmt["json_schema"]["schema"]
    for obj in objects(schema):  # strict mode: closed objects, every property required
        assert obj["additionalProperties"] is False
        assert set(obj["required"]) == set(obj["properties"])
    assert usage == [{"input_tokens": 1200, "output_tokens": 900}]
    assert plan.engine == "openai:gpt-4o-mini"
    assert plan.scenes[0].character_ids == ["c1"]  # unknown ids dropped
    assert plan.scenes[1].palette[0].startswith("#")  # a bad palette replaced from the mood
    assert_plan_rules(plan, 8, timing)


def test_llm_boundary_moves_are_capped_at_2_s_and_land_on_a_beat(sleeps):
    timing = song_timing()
    base = timing["slots"][5]["start_s"]
    for asked, expected in ((1.26, base + 1.5), (-7.0, base - MAX_BOUNDARY_SHIFT_S)):
        fake = FakeOpenAI().on(CHAT, chat_answer(llm_plan_json(timing, shift_s=asked)))
        plan = llm_planner.plan_with_llm(
            PROMPT,
            timing,
            Lyrics("skipped", "none"),
            8,
            client=fake.client(),
            model="gpt-4o-mini",
            usage=[],
        )
        assert plan.slots[5].start_s == pytest.approx(expected)
        assert plan.slots[4].end_s == plan.slots[5].start_s
        assert plan.slots[5].start_s in timing["cut_candidates_s"]


def test_llm_plan_that_repeats_a_take_is_repaired(sleeps):
    timing = song_timing()
    fake = FakeOpenAI().on(CHAT, chat_answer(llm_plan_json(timing, repeat=True)))
    plan = llm_planner.plan_with_llm(
        PROMPT,
        timing,
        Lyrics("skipped", "none"),
        8,
        client=fake.client(),
        model="gpt-4o-mini",
        usage=[],
    )
    assert_plan_rules(plan, 8, timing)


@pytest.mark.parametrize("content", ["{not json", '{"title": "only a title"}'])
def test_malformed_llm_json_is_retried_then_the_rules_take_over(content, sleeps):
    timing = song_timing()
    fake = FakeOpenAI().on(CHAT, chat_answer(content))
    outcome = planner.make_plan(PROMPT, timing, Lyrics("skipped", "none"), 8, client=fake.client())
    assert len(fake.to(CHAT)) == 3
    assert outcome.engine == "rule-based (fallback)"
    assert "failed" in outcome.fallback_reason
    assert len(outcome.usage) == 3  # every answered attempt is billed
    assert_plan_rules(outcome.plan, 8, timing)


def test_llm_auth_error_falls_back_at_once(sleeps):
    timing = song_timing()
    fake = FakeOpenAI().on(
        CHAT, httpx.Response(401, json={"error": {"message": "bad key", "type": "auth"}})
    )
    outcome = planner.make_plan(PROMPT, timing, Lyrics("skipped", "none"), 8, client=fake.client())
    assert len(fake.to(CHAT)) == 1 and sleeps == []
    assert outcome.engine == "rule-based (fallback)" and outcome.usage == []


def test_llm_timeouts_use_three_attempts(sleeps):
    timing = song_timing()
    req = httpx.Request("POST", "https://api.openai.com/v1/chat/completions")
    fake = FakeOpenAI().on(CHAT, httpx.ReadTimeout("slow", request=req))
    outcome = planner.make_plan(PROMPT, timing, Lyrics("skipped", "none"), 8, client=fake.client())
    assert len(fake.to(CHAT)) == 3 and sleeps == [2.0, 4.0]
    assert outcome.engine == "rule-based (fallback)"


# -- the rule-based planner ---------------------------------------------------------------------


def test_rule_plan_designs_shots_not_slots():
    timing = song_timing()
    lyrics = Lyrics(
        "transcribed",
        "openai:whisper-1",
        words=[
            {"word": "burning", "start_s": 30.5, "end_s": 31.0},
            {"word": "highway", "start_s": 31.2, "end_s": 31.8},
        ],
    )
    plan = rule_planner.plan_rule_based(PROMPT, timing, lyrics, 8, engine="rule-based (local)")
    assert_plan_rules(plan, 8, timing)
    assert len(plan.slots) == 32 and len(plan.shots) == 8
    summary = plan.reuse_summary()
    assert summary["shots_reused"] == 32 - len({s.shot_id for s in plan.slots})
    # The chorus comes back three times and is filled from its own shots each time.
    chorus_shots = [{s.shot_id for s in plan.slots[a : a + 4]} for a in (8, 16, 24)]
    assert chorus_shots[0] == chorus_shots[1] == chorus_shots[2]
    # Reused takes are varied, and the prompt's words shape the look.
    assert {s.variant for s in plan.slots} >= {"as_is", "mirror", "reverse"}
    assert plan.mood == "dark" and "#d62828" in plan.scenes[0].palette  # "night", "red"
    assert plan.characters and plan.characters[0].name == "The dancer"
    verse_shot = plan.shot(plan.slots[4].shot_id)
    assert "burning" in verse_shot.prompt and "highway" in verse_shot.prompt


def test_rule_plan_with_one_section_and_three_shots_never_repeats_a_take():
    timing = song_timing()
    for s in timing["slots"]:
        s["section"] = "full"
    plan = rule_planner.plan_rule_based(
        PROMPT, timing, Lyrics("skipped", "none"), 3, engine="rule-based (local)"
    )
    assert len(plan.shots) == 3
    assert_plan_rules(plan, 3, timing)
    # One kind of section still gets three places, so the shots start from different pictures.
    assert len({s.scene_id for s in plan.shots}) == 3
    assert len({tuple(sc.palette) for sc in plan.scenes}) == 3


def test_failed_clips_are_refilled_from_the_shots_that_remain():
    timing = song_timing()
    plan = rule_planner.plan_rule_based(
        PROMPT, timing, Lyrics("skipped", "none"), 8, engine="rule-based (local)"
    )
    lost = {plan.shots[0].id, plan.shots[3].id}
    refilled = without_shots(plan, lost)
    assert not lost & {s.shot_id for s in refilled.slots}
    assert len(refilled.shots) == 6
    assert_plan_rules(refilled, 8, timing)
    assert [s.start_s for s in refilled.slots] == [s.start_s for s in plan.slots]


def test_the_schema_sent_to_the_llm_accepts_a_written_plan_and_refuses_broken_ones():
    # Checked with an independent JSON Schema validator against plans written out by hand in
    # this file, not against the model the schema is generated from.
    import jsonschema_rs

    schema = llm_planner.response_format()["json_schema"]["schema"]
    valid = jsonschema_rs.validator_for(schema)
    plan = json.loads(llm_plan_json(song_timing()))
    assert valid.is_valid(plan)
    assert LLMPlan.model_validate(plan).shots[0].camera_move == "push_in"

    missing = {k: v for k, v in plan.items() if k != "slots"}
    extra = {**plan, "budget": 3}
    bad_move = json.loads(json.dumps(plan))
    bad_move["shots"][0]["camera_move"] = "barrel_roll"
    bad_index = json.loads(json.dumps(plan))
    bad_index["slots"][0]["index"] = "first"
    loose_shot = json.loads(json.dumps(plan))
    loose_shot["shots"][0]["lens"] = "35mm"
    for broken in (missing, extra, bad_move, bad_index, loose_shot):
        assert not valid.is_valid(broken)
