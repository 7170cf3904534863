"""The ``mashup`` job kind (the AI Magic Generator): 1-4 tracks and a vibe become one track.

Stages:
1. ``separating_stems``: four stems of every track in parallel (``ctx.map`` over the stems
   stage: side by side on GPUs in production, the local pool here).
2. ``analyzing``: tempo, downbeats and key of each track (the analyze kind's ``audio_analysis``
   stage and cache),
   then the decisions (``functions.mashup.plan_mashup``): which track is the instrumental base,
   which gives the vocals, what the others add.
3. ``mixing``: each non-base stem time-stretched and pitch-shifted to the base's tempo and key
   (Rubber Band), placed on the base's phrases, then the vibe's mix (``functions.mix``).
4. ``mastering``: to the vibe's loudness with a -1 dBTP true-peak ceiling.

Outputs: ``mashup``, every separated stem of every track (``stems-<track>-<stem>``, reused from
the stems cache when an earlier job made them), every aligned stem (``aligned-<track>-<stem>``)
and ``report`` (JSON: each decision with its figures); the report is also the job's result.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from functions.audio_io import load_audio, save_audio
from functions.audio_stream import BlockReader
from functions.mashup import VIBES, plan_mashup
from functions.mashup_align import align_stem
from functions.mashup_tracks import describe_track, file_rms, vocal_entry_s
from functions.master import master_to_target
from functions.mix import MixInput, mix_tracks
from functions.pipelines.analyze import analyses_of
from functions.pipelines.audio_outputs import keep_output, stored_record, write_under_ceiling
from functions.pipelines.estimates import input_durations_s
from functions.pipelines.stems import CACHE_NAMESPACE as STEMS_CACHE
from functions.pipelines.stems import StemsParams, configured_engine, stems_stage
from functions.pipelines.stems import cache_key as stems_cache_key
from functions.stems import FOUR_STEMS
from shared.config import get_settings
from shared.errors import InvalidInput
from shared.executors import runs_stages_remotely
from shared.registry import JobKind, saved_lines

# Four tracks' stems are stretched and mixed in memory; songs, not DJ sets.
MAX_TRACK_S = 10 * 60.0
Vibe = Literal["energetic", "chill", "dark", "upbeat"]
Stem = Literal["vocals", "drums", "bass", "other"]


class TrackStems(BaseModel):
    model_config = ConfigDict(extra="forbid")

    track: int = Field(ge=0, le=3, description="0-based index of the uploaded file")
    stems: list[Stem] = Field(min_length=1)


class MashupParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    vibe: Vibe = "energetic"
    stems: list[TrackStems] | None = Field(
        None, description="which stems of which track to use; default: chosen automatically"
    )
    base_track: int | None = Field(None, ge=0, le=3, description="force the instrumental base")
    output_format: Literal["wav", "flac", "mp3"] = "wav"

    @field_validator("stems")
    @classmethod
    def _one_entry_per_track(cls, v: list[TrackStems] | None) -> list[TrackStems] | None:
        if v is not None and len({x.track for x in v}) != len(v):
            raise InvalidInput("Give each track's stems once.", code="BAD_STEMS")
        return v


def _cached_stems(ctx, track) -> list[dict] | None:
    """Stored four-stem WAVs of this input from an earlier stems or mashup job of this user
    (the stems kind's cache; 24-bit first, then 16-bit), or None."""
    if not track.sha256 or getattr(ctx, "fetch_stored", None) is None:
        return None
    engine, model = configured_engine(settings=ctx.settings)
    for bits in (24, 16):
        params = StemsParams(stems=list(FOUR_STEMS), output_format="wav", bit_depth=bits)
        hit = ctx.cache_get(STEMS_CACHE, stems_cache_key(track.sha256, params, engine, model))
        if hit is not None and {r["name"] for r in hit["outputs"]} >= set(FOUR_STEMS):
            return hit["outputs"]
    return None


def _separate(ctx, st) -> tuple[list[dict[str, Path]], str, list[list[dict] | None], list[dict]]:
    """Four stems of every input, in parallel, written to the workdir (they stay on disk until
    used: four tracks' sixteen stems need not share memory); a track whose stems are cached is
    fetched instead of separated. Returns their paths, the engine(s), the cache records per
    track (None: separated now) and the separation results of the others."""
    cached: list[list[dict] | None] = [_cached_stems(ctx, f) for f in ctx.inputs]
    paths: list[dict[str, Path]] = [{} for _ in ctx.inputs]
    for i, records in enumerate(cached):
        if records is None:
            continue
        folder = ctx.workdir / f"track{i}"
        folder.mkdir(parents=True, exist_ok=True)
        for r in records:
            if r["name"] in FOUR_STEMS:
                got = ctx.fetch_stored(r, folder / f"{r['name']}.wav")
                if got is None:
                    cached[i], paths[i] = None, {}
                    break
                paths[i][r["name"]] = got
    todo = [i for i, c in enumerate(cached) if c is None]
    if len(todo) < len(cached):
        ctx.message(f"Stems of {len(cached) - len(todo)} track(s) were made before; reusing them.")
    engine, model = configured_engine(settings=ctx.settings)
    separator_kw = {
        "engine": engine,
        "model_name": model,
        "weights_dir": str(ctx.settings.weights_dir),
    }
    items = [
        {
            "audio": ctx.inputs[i].path.read_bytes(),
            "filename": ctx.inputs[i].filename,
            "stems": list(FOUR_STEMS),
            "output_format": "wav",
            "bit_depth": 24,
            **separator_kw,
        }
        for i in todo
    ]
    done = [0.0] * len(items)

    def report(i: int, fraction: float) -> None:
        done[i] = fraction
        st.progress(sum(done) / len(done))

    for i, item in enumerate(items):
        item["progress"] = lambda f, i=i: report(i, f)
    started = time.monotonic()
    results = ctx.map(stems_stage, items) if items else []
    engines = sorted(
        {r["engine"] if r["engine"] == "dsp" else f"demucs:{r['model']}" for r in results}
        | ({"cache"} if len(todo) < len(cached) else set())
    )
    st.engine = ",".join(engines)
    if items:
        ctx.compute_cost(
            stems_stage,
            time.monotonic() - started,
            detail=f"stem separation of {len(items)} tracks",
        )
    for i, r in zip(todo, results, strict=True):
        folder = ctx.workdir / f"track{i}"
        folder.mkdir(parents=True, exist_ok=True)
        for name, data in r["stems"].items():
            paths[i][name] = folder / f"{name}.wav"
            paths[i][name].write_bytes(data)
    return paths, st.engine, cached, [dict(r, track=i) for i, r in zip(todo, results, strict=True)]


def _keep_separated_stems(ctx, stems, cached, fresh) -> list[dict]:
    """Every track's separated stems as outputs ``stems-<track>-<stem>`` (beside the aligned
    ``aligned-<track>-<stem>``): attached from storage when cached, uploaded otherwise, and then
    remembered in the stems kind's cache so a later stems or mashup job reuses them."""
    listing = []
    by_track = {r["track"]: r for r in fresh}
    for i, f in enumerate(ctx.inputs):
        label = Path(f.filename).stem or f"track{i}"
        records = {r["name"]: r for r in cached[i] or []}
        kept = []
        for name in FOUR_STEMS:
            out_name = f"stems-{i}-{name}"
            meta = {"track": i, "stem": name, "separated": True}
            out = None
            if name in records and getattr(ctx, "reuse_output", None) is not None:
                out = ctx.reuse_output(out_name, records[name])
            if out is None:
                out = keep_output(
                    ctx, out_name, stems[i][name], bucket="stems",
                    filename=f"{label}-{name}.wav", meta=meta,
                )  # fmt: skip
            kept.append(out)
            listing.append(
                {"track": i, "stem": name, "output": out_name, "cached": name in records}
            )
        r = by_track.get(i)
        if r is not None and f.sha256:
            _remember_stems(ctx, f.sha256, r, kept)
    return listing


def _remember_stems(ctx, sha256: str, r: dict, kept: list) -> None:
    params = StemsParams(stems=list(FOUR_STEMS), output_format="wav", bit_depth=24)
    engine = r["engine"]
    key = stems_cache_key(sha256, params, engine, r["model"] or "")
    records = [dict(stored_record(o), name=o.meta["stem"]) for o in kept]
    result = {
        "engine": engine,
        "model": r["model"],
        "stems": [
            {"name": o.meta["stem"], "filename": o.filename, "size_bytes": o.size_bytes}
            for o in kept
        ],
        "format": "wav",
        "bit_depth": 24,
        "bitrate_kbps": None,
        "sample_rate": r["sample_rate"],
        "channels": r["channels"],
        "duration_s": r["duration_s"],
        "separation_s": None,
    }
    ctx.cache_put(STEMS_CACHE, key, {"outputs": records, "result": result})


def _describe(ctx, analyses: list[dict], stems: list[dict[str, Path]]) -> list:
    tracks = []
    for i, (f, analysis) in enumerate(zip(ctx.inputs, analyses, strict=True)):
        entry = vocal_entry_s(load_audio(stems[i]["vocals"], sr=11025, mono=True))
        tracks.append(
            describe_track(
                i,
                f.filename,
                analysis,
                mix_rms=file_rms(f.path),
                stem_rms={name: file_rms(p) for name, p in stems[i].items()},
                voice_entry_s=entry,
            )
        )
    return tracks


def run(ctx) -> dict:
    p: MashupParams = ctx.params
    vibe = VIBES[p.vibe]
    n = len(ctx.inputs)
    for i in [
        *(x.track for x in p.stems or []),
        *([p.base_track] if p.base_track is not None else []),
    ]:
        if i >= n:
            raise InvalidInput(
                f"There is no track {i}: {n} file(s) were uploaded (0-{n - 1}).", code="BAD_TRACK"
            )
    with ctx.stage("separating_stems", engine=configured_engine(settings=ctx.settings)[0]) as st:
        stems, stems_engine, cached, fresh = _separate(ctx, st)
        separated = _keep_separated_stems(ctx, stems, cached, fresh)
    with ctx.stage("analyzing", engine="soundstage-dsp") as st:
        analyses = analyses_of(ctx, ctx.inputs, lambda f, m=None: st.progress(0.75 * f, m))
        st.progress(0.8, "choosing the base and the vocals")
        tracks = _describe(ctx, analyses, stems)
        choice = {x.track: list(x.stems) for x in p.stems} if p.stems else None
        plan = plan_mashup(tracks, p.vibe, stem_choice=choice, base_track=p.base_track)
        report = plan.report()
        ctx.message(
            f"Base: track {plan.base.index} ({plan.base.tempo_bpm:.1f} BPM, {plan.base.key.name}; "
            f"mashup at {report['target_tempo_bpm']:.1f} BPM); "
            + (f"vocals: track {plan.vocals.index}." if plan.vocals else "no separate vocal track.")
        )
    with ctx.stage("mixing", engine="rubberband+pedalboard") as st:
        with BlockReader(stems[plan.base.index]["drums"]) as base:
            # The base is stretched too when it meets the vocal track half-way.
            length_n, sr = int(round(base.frames / plan.base_stretch)), base.sample_rate
        inputs, aligned_dir = [], ctx.workdir / "aligned"
        aligned_dir.mkdir(parents=True, exist_ok=True)
        layer_pan = iter((-0.3, 0.3, -0.15, 0.15))
        for k, part in enumerate(plan.parts):
            for name in part.stems:
                source = load_audio(stems[part.index][name], sr=sr)
                aligned = align_stem(source, part, length_n, voice=name == "vocals")
                path = aligned_dir / f"aligned-{part.index}-{name}.wav"
                save_audio(path, aligned, "wav", bit_depth=24)
                keep_output(
                    ctx,
                    f"aligned-{part.index}-{name}",
                    path,
                    bucket="stems",
                    meta={"track": part.index, "stem": name, "role": part.role},
                )
                pan = next(layer_pan, 0.0) if part.role == "layer" else 0.0
                gain = vibe.stem_gain_db.get(name, 0.0) - (6.0 if part.role == "layer" else 0.0)
                inputs.append(MixInput(aligned, gain_db=gain, pan=pan, name=f"{part.index}:{name}"))
            st.progress((k + 1) / (len(plan.parts) + 1), f"aligned track {part.index}")
        mixed = mix_tracks(inputs, vibe.profile, sample_rate=sr)
    with ctx.stage("mastering", engine="pedalboard") as st:
        mastered = master_to_target(mixed.audio, vibe.master_lufs)
        st.progress(0.7, "mastered")
        dest = ctx.workdir / f"mashup-{p.vibe}.{p.output_format}"
        _, loudness, _ = write_under_ceiling(dest, mastered.audio, p.output_format)
        keep_output(ctx, "mashup", dest, filename=dest.name, meta={"vibe": p.vibe, **loudness})
        report.update(
            loudness=loudness,
            master_chain=mastered.chain,
            duration_s=round(mastered.audio.duration_s, 3),
            stems_engine=stems_engine,
            separated_stems=separated,
        )
        report_path = ctx.workdir / "mashup-report.json"
        report_path.write_text(json.dumps(report, indent=2))
        keep_output(ctx, "report", report_path, filename="mashup-report.json")
    return report


def _estimate_s(params: MashupParams, files: list[dict]) -> float:
    durations = input_durations_s(files)
    engine, _ = configured_engine()
    if runs_stages_remotely(get_settings()):
        separation = 20.0 + 0.05 * max(durations)  # the tracks run side by side on GPUs
    else:
        per_s = 0.2 if engine == "dsp" else 1.0
        separation = per_s * sum(durations) / min(2, len(durations))  # two at a time locally
    return 5.0 + separation + 0.15 * sum(durations) + 0.1 * max(durations)


def summarize(r: dict, inputs: list[str], saved: list) -> str:
    """The terminal summary of a mashup: the target and what each track gave (rich markup)."""
    lines = [
        f"mashup ({r.get('vibe')}) at {r.get('target_tempo_bpm')} BPM in {r.get('target_key')}"
    ]
    for part in r.get("parts", []):
        lines.append(
            f"  track {part['track']} {part['role']:<6} {', '.join(part['stems'])}: "
            f"{part['tempo_change']}, {part['key_change']}, offset {part['offset_s']} s"
        )
    if saved:
        lines.append(saved_lines(saved))
    return "\n".join(lines)


KIND = JobKind(
    name="mashup",
    params=MashupParams,
    stages=[
        ("separating_stems", 0.5),
        ("analyzing", 0.15),
        ("mixing", 0.25),
        ("mastering", 0.1),
    ],
    run=run,
    description="The AI Magic Generator: a mashup of 1-4 tracks in a vibe.",
    min_files=1,
    max_files=4,
    estimate_s=_estimate_s,
    max_duration_s=MAX_TRACK_S,
    main_output="mashup",
    summarize=summarize,
)
