"""Sign up, log in, log out; every user gets a personal team."""


import pytest

from accounts.models import Membership, User

pytestmark = pytest.mark.django_db


def test_signup_creates_a_user_with_a_personal_team_and_logs_in(client):
    response = client.post("/accounts/signup/", {"email": "Dana@Example.com", "password": "a long passphrase 42"})
    assert response.status_code == 302
    user = User.objects.get()
    assert user.email == "dana@example.com"
    membership = Membership.objects.get(user=user)
    assert membership.team == user.personal_team
    assert membership.role == Membership.Role.OWNER
    assert client.get("/").status_code == 200


@pytest.mark.parametrize(
    "data, field, message",
    [
        ({"email": "not-an-email", "password": "a long passphrase 42"}, "email", "Enter a valid email address"),
        ({"email": "alice@example.com", "password": "a long passphrase 42"}, "email", "already exists"),
        ({"email": "e@example.com", "password": "short"}, "password", "too short"),
        ({"email": "e@example.com", "password": ""}, "password", "required"),
    ],
)
def test_signup_errors_name_the_field(client, alice, data, field, message):
    response = client.post("/accounts/signup/", data)
    assert response.status_code == 400
    assert message in " ".join(response.context["form"].errors[field])
    assert User.objects.count() == 1  # only Alice


def test_login_and_logout(client, alice):
    response = client.post("/accounts/login/", {"username": "alice@example.com", "password": "correct horse battery"})
    assert response.status_code == 302
    assert client.get("/").status_code == 200
    client.post("/accounts/logout/")
    assert client.get("/").status_code == 302


def test_wrong_password_is_refused(client, alice):
    response = client.post("/accounts/login/", {"username": "alice@example.com", "password": "wrong"})
    assert response.status_code == 200
    assert "Please enter a correct email and password" in response.content.decode()


def test_an_operator_made_by_createsuperuser_can_open_every_team_page(client):
    """`createsuperuser` skips sign-up; the operator still gets a personal team, so the
    studio, gallery, team and billing pages work instead of a 403 for a non-member."""
    from django.core.management import call_command

    call_command("createsuperuser", interactive=False, email="ops@framecast.example", verbosity=0)
    operator = User.objects.get()
    assert not Membership.objects.filter(user=operator).exists(), "no team yet"
    client.force_login(operator)
    for path in ("/", "/gallery/", "/team/", "/billing/"):
        response = client.get(path)
        assert response.status_code == 200, f"{path}: {response.status_code}"
    [membership] = Membership.objects.filter(user=operator)
    assert (membership.team, membership.role) == (operator.personal_team, Membership.Role.OWNER)
    assert operator.personal_team.name == "ops's team"


def test_a_user_made_in_the_admin_gets_one_personal_team_however_many_requests(client):
    user = User.objects.create_user(email="erin@example.com", password="correct horse battery")
    client.force_login(user)
    for _ in range(3):
        assert client.get("/gallery/").status_code == 200
    assert Membership.objects.filter(user=user).count() == 1


@pytest.mark.services
def test_two_first_requests_at_once_make_one_personal_team(transactional_db):
    from accounts.services import personal_team_ensure

    from .conftest import at_once

    user = User.objects.create_user(email="erin@example.com", password="correct horse battery")
    outcomes = at_once(lambda: personal_team_ensure(user=user).team_id, 2)
    assert len(set(outcomes)) == 1 and all(isinstance(team_id, int) for team_id in outcomes), outcomes
    assert Membership.objects.filter(user=user).count() == 1
