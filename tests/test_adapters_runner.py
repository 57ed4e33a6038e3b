"""Adapters in the worker's runner: a job's team LoRAs (files in the default storage) and
the turbo speed's distillation adapter are applied to that job only, on the warm model; a
LoRA that is gone fails its job with a clear reason and releases its credits."""

import hashlib

import numpy as np
import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from billing.ledger import account_for_team
from generation import catalog
from generation.models import Job
from generation.services import JobParams, job_submit
from gpu_workers import adapters, runner
from gpu_workers import pipeline as gp

from .test_tenant_isolation import make_job
from .test_turbo_speed import registry

pytestmark = pytest.mark.django_db

SHAPE = dict(prompt="a paper boat", seed=9, width=64, height=32, num_frames=5, steps=4, guidance=5.0)


@pytest.fixture
def frames_made(monkeypatch):
    """The frames each finished job was made of, by job id (the real _finish still runs)."""
    made, real_finish = {}, runner._finish

    def recording_finish(job, frames):
        made[job.pk] = frames.copy()
        real_finish(job, frames)

    monkeypatch.setattr(runner, "_finish", recording_finish)
    return made


@pytest.fixture
def tiny_pipe(tiny_model):
    pipe = gp.load_model(catalog.TINY)
    yield pipe
    adapters.forget_all(pipe)


@pytest.fixture
def stored_lora(tiny_pipe, tmp_path, settings):
    """A team LoRA file (a random LoRA of the tiny model) in the default storage, and the
    entry a job records for it."""
    settings.FRAMECAST_LORA_CACHE_DIR = tmp_path / "lora-cache"
    path = adapters.save_random_lora(tiny_pipe.transformer, tmp_path / "ink.safetensors", rank=4, seed=11)
    data = path.read_bytes()
    name = default_storage.save("loras/test/ink.safetensors", ContentFile(data))
    yield {"id": 1, "name": "ink", "scale": 1.0, "file": name, "sha256": hashlib.sha256(data).hexdigest()}
    default_storage.delete(name)


def run(job) -> Job:
    assert runner.run_next("cpu", worker="test") == job
    job.refresh_from_db()
    return job


def test_a_lora_job_differs_from_the_same_job_without_it_and_never_leaks_into_the_next(
    alice, stored_lora, frames_made
):
    base_loads = gp.base_model_loads()
    before = run(make_job(alice, **SHAPE))
    styled = run(make_job(alice, **SHAPE, loras=[stored_lora]))
    after = run(make_job(alice, **SHAPE))
    for job in (before, styled, after):
        assert job.state == Job.State.SUCCEEDED, job.error_detail
    assert not np.array_equal(frames_made[styled.pk], frames_made[before.pk])
    assert np.array_equal(frames_made[after.pk], frames_made[before.pk])  # bit for bit
    assert gp.base_model_loads() == base_loads  # the warm model served all three


def test_a_lora_is_fetched_and_loaded_once_then_reused(alice, stored_lora, frames_made, settings):
    loads = adapters.adapter_loads()
    first = run(make_job(alice, **SHAPE, loras=[stored_lora]))
    run(make_job(alice, **SHAPE))
    again = run(make_job(alice, **SHAPE, loras=[stored_lora]))
    assert adapters.adapter_loads() == loads + 1
    assert np.array_equal(frames_made[again.pk], frames_made[first.pk])
    cached = settings.FRAMECAST_LORA_CACHE_DIR / f"{stored_lora['sha256']}.safetensors"
    assert cached.read_bytes() == default_storage.open(stored_lora["file"]).read()
    assert [path.name for path in settings.FRAMECAST_LORA_CACHE_DIR.iterdir()] == [cached.name]  # no partial files


def test_a_lora_scale_is_applied(alice, stored_lora, frames_made):
    full = run(make_job(alice, **SHAPE, loras=[stored_lora]))
    half = run(make_job(alice, **SHAPE, loras=[{**stored_lora, "scale": 0.5}]))
    assert not np.array_equal(frames_made[half.pk], frames_made[full.pk])


@pytest.mark.parametrize("problem", ["deleted", "tampered"])
def test_a_lora_that_is_gone_or_altered_fails_the_job_clearly_and_releases_its_credits(
    alice, stored_lora, problem, settings
):
    team = alice.personal_team
    before = account_for_team(team).available
    params = JobParams(model_name="framecast-tiny", negative_prompt="", fps=8, loras=(stored_lora,), **SHAPE)
    job = job_submit(team=team, user=alice, params=params)
    assert account_for_team(team).available < before  # held
    default_storage.delete(stored_lora["file"])
    if problem == "tampered":
        default_storage.save(stored_lora["file"], ContentFile(b"other bytes"))
    job = run(job)
    assert job.state == Job.State.FAILED
    assert job.error_message == "The LoRA 'ink' is no longer available."
    assert account_for_team(team).available == before
    cache = settings.FRAMECAST_LORA_CACHE_DIR
    assert not (cache.exists() and any(cache.iterdir()))  # nothing kept of it, not even a partial copy


def test_a_file_that_is_not_a_lora_of_the_model_fails_the_job_with_a_clear_reason(alice, stored_lora, tmp_path):
    from safetensors.torch import save_file
    import torch

    path = tmp_path / "other.safetensors"
    save_file({"transformer.elsewhere.lora_A.weight": torch.ones(2, 3), "transformer.elsewhere.lora_B.weight": torch.ones(3, 2)}, path)
    data = path.read_bytes()
    name = default_storage.save("loras/test/other.safetensors", ContentFile(data))
    entry = {"id": 2, "name": "other", "scale": 1.0, "file": name, "sha256": hashlib.sha256(data).hexdigest()}
    job = run(make_job(alice, **SHAPE, loras=[entry]))
    assert job.state == Job.State.FAILED
    assert job.error_message == "The LoRA 'other' could not be applied to this model."
    assert run(make_job(alice, **SHAPE)).state == Job.State.SUCCEEDED  # the worker goes on


@pytest.fixture
def turbo_tiny(settings, tmp_path, tiny_pipe):
    """framecast-tiny with a turbo speed whose adapter is a random LoRA (the shipped toy
    model's distilled one stands in for it in production)."""
    settings.FRAMECAST_MODELS_FILE = registry(tmp_path, with_file=False)
    adapters.save_random_lora(tiny_pipe.transformer, tmp_path / "turbo" / "pytorch_lora_weights.safetensors", rank=4, seed=3)
    spec = catalog.get_model("framecast-tiny")
    assert spec.offered_speeds() == ("standard", "fast", "turbo")
    return spec


def test_a_turbo_job_runs_with_the_adapter_and_its_shift_and_the_next_job_without(
    alice, turbo_tiny, tiny_pipe, frames_made
):
    fixed = dict(SHAPE, steps=turbo_tiny.turbo.steps, guidance=turbo_tiny.turbo.guidance)
    scheduler = tiny_pipe.scheduler
    standard = run(make_job(alice, **fixed))
    turbo = run(make_job(alice, **fixed, speed=Job.Speed.TURBO))
    again = run(make_job(alice, **fixed))
    assert turbo.state == Job.State.SUCCEEDED, turbo.error_detail
    assert not np.array_equal(frames_made[turbo.pk], frames_made[standard.pk])
    assert np.array_equal(frames_made[again.pk], frames_made[standard.pk])
    assert tiny_pipe.scheduler is scheduler and scheduler.config.shift == 3.0
    assert "turbo" in adapters.loaded_adapters(tiny_pipe)

    # Turbo is the adapter and the shift together: either alone gives other frames.
    args = JobParams.from_job(turbo).pipeline_args()
    adapter = adapters.Adapter(name="turbo", path=turbo_tiny.turbo.weights_file())
    shift_only = gp.generate_frames(tiny_pipe, **args, flow_shift=turbo_tiny.turbo.flow_shift)
    adapter_only = gp.generate_frames(tiny_pipe, **args, adapters=[adapter])
    both = gp.generate_frames(tiny_pipe, **args, adapters=[adapter], flow_shift=turbo_tiny.turbo.flow_shift)
    assert np.array_equal(both, frames_made[turbo.pk])
    assert not np.array_equal(shift_only, both) and not np.array_equal(adapter_only, both)


def test_a_turbo_job_whose_adapter_is_missing_on_the_worker_fails_clearly(alice, turbo_tiny, tmp_path):
    job = make_job(alice, **dict(SHAPE, steps=4, guidance=1.0), speed=Job.Speed.TURBO)
    (tmp_path / "turbo" / "pytorch_lora_weights.safetensors").unlink()
    job = run(job)
    assert job.state == Job.State.FAILED
    assert job.error_message == "The turbo speed of framecast-tiny is not available right now."



def test_the_local_copies_stay_within_their_disk_budget_least_recently_used_first(tmp_path, monkeypatch):
    names, digests = [], []
    for index in range(3):
        data = bytes([index]) * 1000
        names.append(default_storage.save(f"loras/test/{index}.safetensors", ContentFile(data)))
        digests.append(hashlib.sha256(data).hexdigest())
    monkeypatch.setenv("FRAMECAST_LORA_DISK_CACHE_MB", str(2500 / 2**20))  # room for two
    try:
        paths = [adapters.local_copy(name, digest, cache_dir=tmp_path) for name, digest in zip(names, digests, strict=True)]
        assert [path.exists() for path in paths] == [False, True, True]
        assert adapters.local_copy(names[0], digests[0], cache_dir=tmp_path).read_bytes() == bytes([0]) * 1000
        assert sorted(path.name for path in tmp_path.iterdir()) == sorted(f"{d}.safetensors" for d in digests[::2])
    finally:
        for name in names:
            default_storage.delete(name)
