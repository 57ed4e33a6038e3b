"""The domain's one "no": a refusal that names the problem, says how to fix it, and knows
how the API answers it. Services raise a subclass; views never build the answer by hand:
core.api_errors maps it for the REST API, openai_api for OpenAI's shape, and forms take it
with `RefusalFormMixin.add_refusal` (studio and HTML pages)."""


# Paths answered in an API's JSON shape (native and OpenAI-compatible), never an HTML page.
API_PREFIXES = ("/api/", "/openai/")


class Refusal(Exception):
    """A request the platform will not carry out, with nothing written.

    message: for people (what is wrong, how to fix it); status: the HTTP status the APIs
    answer with; code: machine-readable (the API's `error.type`); field: the request field
    at fault, when there is one; fields: every field's messages, for form-like errors."""

    status = 400
    code = "invalid_request"
    # More of the answer for machines, added to the REST API's error object (e.g. the
    # budget a job would pass).
    details: dict | None = None

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        field: str | None = None,
        fields: dict[str, list[str]] | None = None,
    ):
        super().__init__(message)
        self.message = message
        self.status = status or type(self).status
        self.code = code or type(self).code
        self.fields = fields or ({field: [message]} if field else None)
        self.field = field or (next(iter(self.fields)) if self.fields else None)

    @classmethod
    def from_fields(cls, fields: dict, **kwargs) -> "Refusal":
        """From a form's or Django ValidationError's messages: the first one leads."""
        fields = {name: [str(message) for message in messages] for name, messages in fields.items()}
        return cls(next(iter(fields.values()))[0], fields=fields, **kwargs)


def as_refusal(error) -> Refusal:
    """A Django ValidationError (a model or form rule) as a 400 refusal naming its fields."""
    if hasattr(error, "error_dict"):
        return Refusal.from_fields(error.message_dict)
    return Refusal(error.messages[0] if error.messages else "Invalid request.")


class InvalidInput(Refusal):
    """The request itself is malformed or out of range (400)."""


class NotAllowed(Refusal):
    """What the caller's role, plan or state does not allow (403)."""

    status = 403
    code = "permission_denied"


class RefusalFormMixin:
    """For Django forms that submit to a service: show its refusal on the form, on the
    field it names when the form has that field (else at the top)."""

    def refusal_field(self, field: str | None) -> str | None:
        return field if field in self.fields else None

    def add_refusal(self, refusal: Refusal) -> None:
        self.add_error(self.refusal_field(refusal.field), refusal.message)
