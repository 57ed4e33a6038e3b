"""The shipped toy model follows its prompt, end to end: captions of the synthetic world go
through the public API (an API key, POST /api/v1/videos), a real Celery worker process runs
the trained diffusers pipeline, the MP4 it stores is downloaded, decoded, and read back by
the automatic judge (background, colour, shape, direction).

Seen prompts are colour–motion pairs the model was trained on; held-out prompts pair a
colour with a motion it never saw that colour do. The figures are printed (`-s`) and are
the ones in gpu_workers/weights/framecast-toy/README.md.
"""

import time

import pytest

from generation import catalog
from gpu_workers.encode import decode_frames
from gpu_workers.toy import judge, world
from gpu_workers.toy.evaluate import held_out_sample, seen_sample

from .conftest import on_plan

TOY = "framecast-toy"
SEEN = seen_sample(24)
HELD_OUT = held_out_sample(12)
SEEDS = (1, 2)


def test_the_toy_model_is_shipped_and_runs_at_its_native_size():
    spec = catalog.get_model(TOY)
    assert spec is not None, "framecast-toy is not in the model registry"
    assert (spec.weights_path() / "model_index.json").is_file()
    assert (spec.defaults["width"], spec.defaults["height"]) == (world.NATIVE_SIZE, world.NATIVE_SIZE)
    assert spec.defaults["num_frames"] == world.NATIVE_FRAMES
    # Served with the prompt padding it was trained with (the length changes the output).
    from gpu_workers.toy import evaluate, model as toy

    assert spec.max_sequence_length == toy.MAX_SEQUENCE_LENGTH
    # The direct judging (bench/toy_model.py, the model card) runs it as the platform does.
    assert (spec.defaults["steps"], spec.defaults["guidance"]) == (evaluate.STEPS, evaluate.GUIDANCE)


def test_it_is_the_default_model_where_nothing_says_otherwise():
    """`make run` and a fresh deployment use framecast-toy (the suite pins it too, for the
    processes it starts, whatever the developer's environment says)."""
    import os
    import subprocess
    import sys

    from .conftest import REPO

    env = {k: v for k, v in os.environ.items() if k != "FRAMECAST_DEFAULT_MODEL"}
    env["DJANGO_SETTINGS_MODULE"] = "config.settings"
    code = "import django; django.setup(); from generation import catalog; print(catalog.default_model().name)"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == TOY, out.stderr[-2000:]


def test_a_prompt_outside_the_world_still_generates():
    """Words the model never saw become <unk>: the prompt still makes a video (of some shape on
    some background), it just does not follow those words."""
    from gpu_workers.pipeline import generate_frames, load_model

    spec = catalog.get_model(TOY)
    frames = generate_frames(
        load_model(spec, device="cpu"), prompt="a cat playing the piano in Paris at night", negative_prompt="", seed=3,
        width=32, height=32, num_frames=9, steps=10, guidance=8.0, max_sequence_length=spec.max_sequence_length,
    )
    assert frames.shape == (9, 32, 32, 3) and frames.dtype.name == "uint8"
    assert frames.std() > 10  # a picture, not a flat or empty frame


def test_the_samples_cover_the_world():
    """The prompts below exercise every word of the world, and none of the seen ones is
    held out (or the other way round)."""
    for scenes in (SEEN, HELD_OUT):
        assert len(set(scenes)) == len(scenes)
    assert {s.colour for s in SEEN} == set(world.COLOURS)
    assert {s.shape for s in SEEN} == set(world.SHAPES)
    assert {s.motion for s in SEEN} == set(world.MOTIONS)
    assert {s.background for s in SEEN} == set(world.BACKGROUNDS)
    assert not any(s.held_out for s in SEEN) and all(s.held_out for s in HELD_OUT)


def _submit(client, auth, scene: world.Scene, seed: int) -> str:
    response = client.post(
        "/api/v1/videos", {"prompt": scene.caption, "model": TOY, "seed": seed}, content_type="application/json", **auth
    )
    assert response.status_code == 201, response.content
    return response.json()["id"]


def _wait_for(client, auth, ids: list[str], timeout: float) -> dict[str, dict]:
    """Polls one video at a time, in the order they run (a poll per half second keeps well
    inside the plan's API request rate)."""
    done: dict[str, dict] = {}
    deadline = time.monotonic() + timeout
    for video_id in ids:
        while True:
            body = client.get(f"/api/v1/videos/{video_id}", **auth).json()
            if body.get("status") in {"succeeded", "failed", "cancelled"}:
                done[video_id] = body
                break
            assert time.monotonic() < deadline, f"{len(ids) - len(done)} videos still not finished after {timeout:.0f}s"
            time.sleep(0.5)
    return done


def _judged(client, auth, body: dict) -> judge.Verdict:
    assert body["status"] == "succeeded", body
    content = client.get(body["content_url"].removeprefix("http://testserver"), **auth)
    assert content["Content-Type"] == "video/mp4", content.content[:300]
    return judge.judge(decode_frames(b"".join(content.streaming_content)))


def judged_through_the_platform(alice, client, start_worker, submit, *, label: str) -> tuple[dict, dict]:
    """Sends every seen and held-out scene × seed through the public API to a real worker
    with `submit(client, auth, scene, seed) -> video id`, judges each stored MP4 and prints
    the figures: (percent per attribute, percent of videos right on background, colour and
    direction together), each by group ("seen", "held-out")."""
    from accounts.api_keys import apikey_create
    from accounts.models import Membership

    on_plan(alice.personal_team, "business")  # room for every job at once in its backlog
    _, secret = apikey_create(membership=Membership.objects.get(user=alice), name="judge")
    auth = {"HTTP_AUTHORIZATION": f"Bearer {secret}"}
    start_worker()

    jobs = [(scene, seed, "seen") for scene in SEEN for seed in SEEDS]
    jobs += [(scene, seed, "held-out") for scene in HELD_OUT for seed in SEEDS]
    ids = [submit(client, auth, scene, seed) for scene, seed, _ in jobs]
    finished = _wait_for(client, auth, ids, timeout=240)

    scores = {"seen": judge.Scores(), "held-out": judge.Scores()}
    together = {"seen": [0, 0], "held-out": [0, 0]}  # [right on all three, videos]
    misses = []
    for video_id, (scene, seed, group) in zip(ids, jobs):
        verdict = _judged(client, auth, finished[video_id])
        scores[group].add(verdict, scene)
        agrees = verdict.agrees_with(scene)
        together[group][0] += all(agrees[key] for key in ("background", "colour", "motion"))
        together[group][1] += 1
        wrong = [key for key, ok in agrees.items() if not ok]
        if wrong:
            misses.append(f"{group} seed {seed} {scene.caption!r}: judged {verdict.colour} {verdict.shape} "
                          f"moving {verdict.motion} on {verdict.background} (wrong: {', '.join(wrong)})")
    share = {group: 100 * right / total for group, (right, total) in together.items()}
    print(f"\n{label} through the platform, judged:\n  seen ({len(SEEN)} prompts x {len(SEEDS)} seeds): "
          f"{scores['seen']}\n  held-out ({len(HELD_OUT)} prompts x {len(SEEDS)} seeds): {scores['held-out']}")
    print(f"  background, colour and direction all right: seen {share['seen']:.1f}%, held-out {share['held-out']:.1f}%")
    print("\n".join(["  misses:", *misses]) if misses else "  no misses")
    return {group: scores[group].percent() for group in scores}, share


@pytest.mark.services
@pytest.mark.slow
def test_videos_from_the_api_show_what_their_prompt_says(alice, client, start_worker):
    percent, _ = judged_through_the_platform(alice, client, start_worker, _submit, label="framecast-toy")
    seen, held_out = percent["seen"], percent["held-out"]
    for key in ("background", "colour", "motion"):
        assert seen[key] >= 95, f"seen prompts: {key} agrees in only {seen[key]:.1f}% of videos"
        assert held_out[key] >= 90, f"held-out prompts: {key} agrees in only {held_out[key]:.1f}% of videos"
    assert seen["shape"] >= 70, f"seen prompts: shape agrees in only {seen['shape']:.1f}% of videos"


def test_the_judge_reads_the_world_it_was_written_for():
    """The judge itself (no model): right on rendered clips, also after the platform's
    upscaling and compression noise, and it says "none" for a still or empty video."""
    import numpy as np
    from PIL import Image

    from gpu_workers.encode import encode_mp4

    videos, _, scenes = world.sample_clips(world.all_scenes(), 24, seed=9)
    scores = judge.Scores()
    for video, scene in zip(videos, scenes):
        upscaled = np.stack([np.asarray(Image.fromarray(f).resize((128, 128), Image.Resampling.BICUBIC)) for f in video])
        scores.add(judge.judge(decode_frames(encode_mp4(upscaled, fps=8))), scene)
    assert scores.percent() == {"background": 100.0, "colour": 100.0, "shape": 100.0, "motion": 100.0}, str(scores)

    still = np.repeat(videos[:1, :1], world.NATIVE_FRAMES, axis=1)[0]
    assert judge.judge(still).motion == "none"
    blank = np.full((9, 32, 32, 3), 255, dtype=np.uint8)
    assert (judge.judge(blank).colour, judge.judge(blank).shape, judge.judge(blank).motion) == ("none", "none", "none")
    with pytest.raises(ValueError, match="at least 32x32"):
        judge.judge(blank[:, :16, :16])
