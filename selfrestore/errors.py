"""Errors a user can cause. The CLI prints them as one line and never as a traceback."""


class UserError(Exception):
    """A problem with the user's input or options (bad file, unknown name, wrong size...)."""


class ImageReadError(UserError):
    """An image file could not be read; the message names the file and the reason."""
