"""The one exception type the pack raises for problems a user can fix."""


class StableAnimatorError(ValueError):
    """A bad input, file or setting. The message says what is wrong and how to fix it."""

    # ComfyUI shows errors as "<module>.<class>: message"; the pack's import path would be long and meaningless.
    __module__ = "StableAnimator"
