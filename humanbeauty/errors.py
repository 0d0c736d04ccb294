"""The base of errors that services raise for requests they refuse.

Pure Python: services stay free of HTTP, and the API's exception handler maps `status` and
`code` to a response, so every refusal reads the same to a client.
"""


class DomainError(Exception):
    status = 400
    code = "invalid"

    def __init__(self, message: str, *, errors: list[str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        # Item by item, where a request carried many (the rows of a file): what each lacked.
        self.errors = errors
