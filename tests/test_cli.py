"""The `framecast` command, against a live server, using only the public API."""

import pytest

from accounts.api_keys import apikey_create
from accounts.models import Membership
from framecast_client.cli import main
from gpu_workers.encode import probe_mp4

from .conftest import on_plan


@pytest.fixture
def api_key(alice):
    on_plan(alice.personal_team, "creator")
    return apikey_create(membership=Membership.objects.get(user=alice), name="cli")[1]


SMALL = ["--width", "64", "--height", "48", "--num-frames", "9", "--steps", "4"]


def test_bad_input_is_reported_naming_the_field(asgi_server, api_key, capsys):
    code = main(["--url", asgi_server, "--api-key", api_key, "generate", "a fox", "--width", "100"])
    assert code == 2
    assert "framecast: Width must be a multiple of 16 pixels (got 100)." in capsys.readouterr().err


def test_a_wrong_key_is_reported(asgi_server, transactional_db, capsys):
    assert main(["--url", asgi_server, "--api-key", "fc_wrong", "generate", "a fox"]) == 2
    assert "framecast: Invalid API key." in capsys.readouterr().err


@pytest.mark.services
@pytest.mark.slow
def test_generate_and_wait_writes_the_mp4(asgi_server, api_key, start_worker, tmp_path, capsys):
    start_worker()
    output = tmp_path / "fox.mp4"
    code = main(["--url", asgi_server, "--api-key", api_key, "generate", "a fox", "--wait", "-o", str(output), *SMALL])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert captured.out.strip() == str(output)
    assert "succeeded  [##############################] 100%" in captured.err
    info = probe_mp4(output.read_bytes())
    assert (info["frames"], info["width"], info["height"]) == (9, 192, 144)  # 64×48, stored at 3×
