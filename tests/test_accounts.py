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
