"""Domain exceptions. Plain classes: the web layer maps them to HTTP in one place."""


class CallcenterError(Exception):
    """Base class of every error this package raises on purpose."""


class ConfigError(CallcenterError):
    """A setting is missing, malformed or unsafe for this process kind."""


class UnknownCaller(CallcenterError):
    """No patient matches the number."""


class ConsentMissing(CallcenterError):
    """The patient's consent does not allow this kind of call."""


class TaskAlreadyClaimed(CallcenterError):
    """Another dialer holds this callback task."""
