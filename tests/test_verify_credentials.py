"""C2PA content credentials: with a signing certificate configured, the worker's MP4
carries a signed manifest (AI-generated, which model, when) that the verifier reads back;
without one, signing is skipped and the video is unchanged."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from generation.models import Job
from gpu_workers.encode import decode_frames, probe_mp4
from gpu_workers.runner import run_next
from safety import watermark
from safety.credentials import make_test_certificate, read_manifest
from safety.models import WatermarkRecord

from .conftest import page_text
from .test_tenant_isolation import make_job

pytestmark = pytest.mark.django_db


@pytest.fixture
def signing_certificate(settings, tmp_path):
    chain, key = make_test_certificate(tmp_path / "c2pa")
    settings.FRAMECAST_C2PA_CERT_FILE, settings.FRAMECAST_C2PA_KEY_FILE = str(chain), str(key)


def test_with_a_certificate_the_video_carries_signed_credentials(alice, tiny_model, signing_certificate):
    job = make_job(alice, width=64, height=48, num_frames=5, steps=2)
    run_next("cpu", worker="test")
    job.refresh_from_db()
    assert job.state == Job.State.SUCCEEDED, job.error_detail
    data = job.video.read()
    manifest = read_manifest(data)
    assert manifest["ai_generated"] and manifest["generator"] == "Framecast"
    assert manifest["software_agent"] == "Framecast / framecast-tiny"
    assert manifest["when"] == job.created_at.isoformat()
    assert manifest["valid"] and not manifest["trusted"]  # a development CA: valid, but on no trust list
    assert manifest["signer"] == "Framecast (development)"
    # Still a normal, fast-start MP4 whose frames carry the watermark.
    assert probe_mp4(data)["faststart"] and probe_mp4(data)["frames"] == 5
    assert watermark.read(decode_frames(data)).mark_id == WatermarkRecord.objects.get(job=job).mark_id

    page = page_text(Client().post("/verify", {"file": SimpleUploadedFile("v.mp4", data, content_type="video/mp4")}))
    assert "Framecast watermark found" in page
    assert "Framecast / framecast-tiny" in page and "valid (the signer's certificate is not on this verifier's trust list)" in page


def test_a_changed_byte_breaks_the_signature_but_not_the_mark(alice, tiny_model, signing_certificate):
    job = make_job(alice, width=64, height=48, num_frames=5, steps=2)
    run_next("cpu", worker="test")
    job.refresh_from_db()
    data = bytearray(job.video.read())
    data[-100] ^= 0xFF  # inside the last frame's data
    manifest = read_manifest(bytes(data))
    assert manifest is not None and not manifest["valid"]


def test_without_a_certificate_no_credentials_are_attached(alice, tiny_model, settings):
    assert not settings.FRAMECAST_C2PA_CERT_FILE
    job = make_job(alice, width=64, height=48, num_frames=5, steps=2)
    run_next("cpu", worker="test")
    job.refresh_from_db()
    assert read_manifest(job.video.read()) is None
