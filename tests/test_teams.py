"""Teams: create, switch, rename, leave, delete; roles decide who may do what."""

import pytest

from accounts.models import Membership, Team
from generation.models import Job

from .conftest import client_for, page_text
from .test_tenant_isolation import make_job

pytestmark = pytest.mark.django_db
Role = Membership.Role


def test_create_a_team_and_work_in_it(alice_client, alice):
    response = alice_client.post("/teams/", {"name": "  Night Shift  "})
    assert response.status_code == 302
    team = Team.objects.get(name="Night Shift")
    assert Membership.objects.get(team=team, user=alice).role == Role.OWNER
    alice_client.post("/", {"prompt": "a neon city", "width": "64", "height": "64", "num_frames": "9", "steps": "2"})
    assert Job.objects.get().team == team


def test_team_needs_a_name(alice_client):
    for blank in ("   ", "\u200b\u200d\u00ad"):  # zero-width characters show no name either
        response = alice_client.post("/teams/", {"name": blank})
        assert response.status_code == 400
        assert "Team name is required." in page_text(response)
    assert not Team.objects.filter(personal_owner=None).exists()


def test_switching_changes_whose_gallery_you_see(alice, acme):
    make_job(alice, prompt="personal sketch")
    acme_job = make_job(alice, prompt="acme launch video")
    acme_job.team = acme
    acme_job.save()
    client = client_for(alice)
    assert "personal sketch" in page_text(client.get("/"))
    client.post(f"/teams/{acme.id}/switch/")
    page = page_text(client.get("/"))
    assert "acme launch video" in page and "personal sketch" not in page
    # A job of the other team is not reachable from here, even by its id.
    personal_job = Job.objects.get(prompt="personal sketch")
    assert client.get(f"/jobs/{personal_job.id}/").status_code == 404


def test_cannot_switch_to_a_team_you_are_not_in(charlie_client, acme):
    assert charlie_client.post(f"/teams/{acme.id}/switch/").status_code == 404


def test_only_admins_and_owners_rename(bob, acme):
    bob_client = client_for(bob, acme)
    assert bob_client.post("/team/rename/", {"name": "Bob's now"}).status_code == 403
    Membership.objects.filter(team=acme, user=bob).update(role=Role.ADMIN)
    # The role change takes effect on the very next request.
    assert bob_client.post("/team/rename/", {"name": "Acme Studios"}).status_code == 302
    acme.refresh_from_db()
    assert acme.name == "Acme Studios"


def test_demotion_takes_effect_on_the_next_request(bob, acme):
    Membership.objects.filter(team=acme, user=bob).update(role=Role.ADMIN)
    bob_client = client_for(bob, acme)
    assert bob_client.get("/team/keys/").status_code == 200
    Membership.objects.filter(team=acme, user=bob).update(role=Role.MEMBER)
    assert bob_client.get("/team/keys/").status_code == 403


def test_removed_member_loses_access_at_once(alice, bob, acme):
    job = make_job(alice)
    job.team = acme
    job.save()
    bob_client = client_for(bob, acme)
    assert bob_client.get(f"/jobs/{job.id}/").status_code == 200
    bob_membership = Membership.objects.get(team=acme, user=bob)
    client_for(alice, acme).post(f"/team/members/{bob_membership.id}/remove/")
    assert bob_client.get(f"/jobs/{job.id}/").status_code == 404


def test_admin_manages_members_but_not_owners(alice, bob, acme):
    Membership.objects.filter(team=acme, user=bob).update(role=Role.ADMIN)
    alice_membership = Membership.objects.get(team=acme, user=alice)
    bob_client = client_for(bob, acme)
    assert bob_client.post(f"/team/members/{alice_membership.id}/role/", {"role": "member"}).status_code == 403
    assert bob_client.post(f"/team/members/{alice_membership.id}/remove/").status_code == 403
    assert Membership.objects.get(pk=alice_membership.pk).role == Role.OWNER


def test_member_cannot_change_roles(alice, bob, acme):
    alice_membership = Membership.objects.get(team=acme, user=alice)
    response = client_for(bob, acme).post(f"/team/members/{alice_membership.id}/role/", {"role": "member"})
    assert response.status_code == 403
    assert "may not manage members and invitations" in page_text(response)


def test_the_last_owner_cannot_leave_or_be_demoted(alice, bob, acme):
    alice_client = client_for(alice, acme)
    response = alice_client.post("/team/leave/", follow=True)
    assert "only owner" in page_text(response)
    assert Membership.objects.filter(team=acme, user=alice).exists()
    bob_membership = Membership.objects.get(team=acme, user=bob)
    alice_client.post(f"/team/members/{bob_membership.id}/role/", {"role": "owner"})
    assert alice_client.post("/team/leave/").status_code == 302
    assert not Membership.objects.filter(team=acme, user=alice).exists()


def test_nobody_leaves_their_personal_team(alice_client, alice):
    response = alice_client.post("/team/leave/", follow=True)
    assert "cannot leave your personal team" in page_text(response)
    assert Membership.objects.filter(team=alice.personal_team, user=alice).exists()


def test_member_leaves_and_is_back_in_their_personal_team(bob, acme):
    bob_client = client_for(bob, acme)
    assert bob_client.post("/team/leave/").status_code == 302
    assert not Membership.objects.filter(team=acme, user=bob).exists()
    assert bob_client.get("/").context["team"] == bob.personal_team


def test_owner_deletes_the_team_with_its_videos(alice, bob, acme, data_dirs, django_capture_on_commit_callbacks):
    from django.core.files.base import ContentFile

    job = make_job(alice)
    job.team = acme
    job.video.save("gone.mp4", ContentFile(b"mp4"), save=False)
    job.state = Job.State.SUCCEEDED
    job.save()
    video_path = job.video.path
    assert client_for(bob, acme).post("/team/delete/", {"confirm_name": "Acme"}).status_code == 403
    alice_client = client_for(alice, acme)
    response = alice_client.post("/team/delete/", {"confirm_name": "Acme?"}, follow=True)
    assert "Type the team's name exactly" in page_text(response)
    with django_capture_on_commit_callbacks(execute=True):
        assert alice_client.post("/team/delete/", {"confirm_name": "Acme"}).status_code == 302
    assert not Team.objects.filter(pk=acme.pk).exists()
    assert not Job.objects.filter(pk=job.pk).exists()
    import os

    assert not os.path.exists(video_path)
    # Alice carries on in her personal team.
    assert alice_client.get("/").context["team"] == alice.personal_team


def test_team_settings_lists_members_with_roles(alice, bob, acme):
    page = page_text(client_for(bob, acme).get("/team/"))
    assert "alice@example.com" in page and "bob@example.com" in page
    assert "Send invitation" not in page  # members do not invite
    assert "Send invitation" in page_text(client_for(alice, acme).get("/team/"))
