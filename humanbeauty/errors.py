"""The base of errors that services raise for requests they refuse.

Pure Python: services stay free of HTTP, and the API's exception handler maps `status` and
`code` to a response, so every refusal reads the same to a client.
"""


class DomainError(Exception):
    """A refusal. A subclass states its answer in its header, not in a body of assignments:
    `class Conflict(DomainError, status=409, code="conflict"):`; what it leaves out it inherits."""

    status = 400
    code = "invalid"

    def __init_subclass__(
        cls, *, status: int | None = None, code: str | None = None, **kwargs: object
    ) -> None:
        super().__init_subclass__(**kwargs)
        if status is not None:
            cls.status = status
        if code is not None:
            cls.code = code

    def __init__(self, message: str, *, errors: list[str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        # Item by item, where a request carried many (the rows of a file): what each lacked.
        self.errors = errors
