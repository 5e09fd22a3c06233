"""The error type of a bad config or argument, shared by the models and the
command-line tools."""


class ConfigError(ValueError):
    """A config that cannot work; the message says what and why.

    The command-line tools print it as one line (exit status 2), also when a
    model's constructor or ``init_weights`` raises it while the runner is
    built or starts.
    """
