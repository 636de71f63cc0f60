"""State machines and multi-database writes. Plain functions: they take the acting
staff user and arguments, never a request, and each is tested without HTTP."""


class WorkflowError(Exception):
    """A refused action: the message is for the staff user, the status for HTTP
    (409 when the current state does not allow it, 422 for input that can't be used)."""

    def __init__(self, message: str, status: int = 409):
        super().__init__(message)
        self.message = message
        self.status = status
