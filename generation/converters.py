class ShareTokenConverter:
    """Share link tokens (`secrets.token_urlsafe`, generation/sharing.py): only URL-safe
    base64 matches, so any other path under /s/ (a NUL, a dot, a space) is a plain 404
    and never reaches the database."""

    regex = "[A-Za-z0-9_-]{1,128}"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value
