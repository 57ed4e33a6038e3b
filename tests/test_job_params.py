"""A job's parameters are declared once (generation.params.JobParams): the result-cache key,
the job's columns and the parameters read back from a job all follow the declaration."""

from dataclasses import dataclass, fields

import pytest

from generation.params import JobParams, param

BASE = dict(model_name="framecast-tiny", prompt="a kite", negative_prompt="", seed=7, width=64, height=64,
            num_frames=9, fps=8, steps=4, guidance=5.0)


@dataclass(frozen=True)
class WithAdapter(JobParams):
    """A parameter added the way the next ones (LoRAs) will be: declared, nothing else."""

    adapter: str | None = param(decides_frames=True, key_tag="adapter", default=None)
    label: str = param(decides_frames=False, default="")


def test_a_new_parameter_that_decides_the_frames_changes_the_cache_key():
    plain = WithAdapter(**BASE)
    assert plain.request_key(seed=7) == JobParams(**BASE).request_key(seed=7), "left out, the key is as before"
    styled = WithAdapter(**BASE, adapter="watercolour")
    other = WithAdapter(**BASE, adapter="ink")
    assert len({plain.request_key(seed=7), styled.request_key(seed=7), other.request_key(seed=7)}) == 3


def test_a_parameter_that_does_not_decide_the_frames_leaves_the_key_alone():
    assert WithAdapter(**BASE, label="x").request_key(seed=7) == WithAdapter(**BASE, label="y").request_key(seed=7)


@pytest.mark.parametrize("name", [spec.name for spec in fields(JobParams) if spec.metadata["decides_frames"]])
def test_every_declared_deciding_field_is_in_the_key(name):
    params = JobParams(**BASE)
    changed = {"model_name": "framecast-toy", "prompt": "a boat", "negative_prompt": "blur", "width": 96,
               "height": 96, "num_frames": 13, "fps": 12, "steps": 5, "guidance": 6.0, "speed": "fast",
               "strength": 0.5, "input_image": b"png", "remix_of": None,
               "loras": ({"id": "l1", "name": "ink", "scale": 0.8, "file": "f", "sha256": "ab"},)}
    if name == "seed":
        assert params.request_key(seed=1) != params.request_key(seed=2)
        return
    if name == "remix_of":
        class Source:  # anything with a primary key and _meta, as a model instance
            pk, _meta = "source-id", object()

        changed[name] = Source()
    assert params.replace(**{name: changed[name]}).request_key(seed=7) != params.request_key(seed=7)


def test_loras_decide_the_key_by_file_and_scale_and_none_is_no_loras():
    ink = {"id": "l1", "name": "ink", "scale": 0.8, "file": "teams/1/loras/l1.safetensors", "sha256": "ab"}
    plain = JobParams(**BASE)
    assert JobParams(**BASE, loras=()).request_key(seed=7) == plain.request_key(seed=7)
    assert JobParams(**BASE, loras=[]).loras is None
    with_ink = JobParams(**BASE, loras=(ink,))
    renamed = JobParams(**BASE, loras=({**ink, "name": "renamed"},))
    rescaled = JobParams(**BASE, loras=({**ink, "scale": 0.5},))
    assert with_ink.request_key(seed=7) == renamed.request_key(seed=7), "the name does not decide the frames"
    assert len({plain.request_key(seed=7), with_ink.request_key(seed=7), rescaled.request_key(seed=7)}) == 3


def test_the_job_columns_come_from_the_declaration():
    columns = JobParams(**BASE, strength=None).job_fields(seed=99)
    assert columns["seed"] == 99 and columns["model_name"] == "framecast-tiny"
    assert "remixed_from" in columns and "input_image" not in columns  # a file, saved by job_submit
    assert columns["guidance"] == 5.0 and isinstance(columns["guidance"], float)


@pytest.mark.django_db
def test_a_job_gives_back_the_parameters_it_was_made_with(alice, tiny_default):
    from generation.services import job_submit

    params = JobParams(**BASE)
    job = job_submit(team=alice.personal_team, user=alice, params=params)
    job.refresh_from_db()
    assert JobParams.from_job(job) == params
    assert JobParams.from_job(job, prompt="a boat").prompt == "a boat"
