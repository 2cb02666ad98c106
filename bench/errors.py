"""User-facing errors: one line naming the file or key and the fix; the CLI exits with code 2."""


class BenchError(Exception):
    """Bad input or an unmet precondition the user can fix. ``str(exc)`` is the one-line message."""


class DataError(BenchError):
    """A dataset cannot be built, prepared or loaded."""


class SuiteError(BenchError):
    """A suite file is invalid (the message lists every problem with file and key)."""


class CheckpointError(BenchError):
    """A checkpoint cannot be used (corrupt, wrong model or resolution)."""


class OfflineError(BenchError):
    """A file that must be downloaded is missing and the network is unreachable."""


class NonFiniteError(BenchError):
    """A generator or a detector returned NaN or infinite values: nothing can be scored from them."""


class NonFiniteImages(NonFiniteError):
    """A generator returned NaN or infinite pixels (in training: the run diverged)."""


class Renamed(UserWarning):
    """An old name was read (e.g. a protocol's, bench.plan.protocol_names): the CLI prints ``note: ...``."""
