"""User-facing errors: one line, naming the bad value and the valid choices."""


class ConfigError(ValueError):
    """A configuration value is invalid. The message is shown to the user as one line, without a traceback."""


def choice_error(field: str, value, choices) -> ConfigError:
    """Build the standard one-line error for a value outside a fixed set of choices."""
    listed = ", ".join(str(c) for c in choices)
    return ConfigError(f"{field}={value!r} is not valid; choose one of: {listed}")
