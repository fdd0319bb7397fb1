"""Errors a user can cause. The CLI prints them as one line and never as a traceback."""


class UserError(Exception):
    """A problem with the user's input or options (bad file, unknown name, wrong size...)."""


class Interrupted(UserError):
    """The user stopped the work (Ctrl-C) after what it had done was saved; the message says where and how to
    continue. The command line exits with 130, as for any Ctrl-C."""

    exit_code = 130


class Terminated(Interrupted):
    """As :class:`Interrupted`, for a SIGTERM (``kill``, a batch system's time limit) that the work saved its state
    for: the command line exits with 143 (128 + 15), as a process ended by SIGTERM."""

    exit_code = 143


class ResumeRefused(UserError):
    """A saved state an interrupted run left that this run cannot continue (unreadable, saved with other
    settings, or the frames it wrote are gone): it is left in place for the user to rerun with those settings,
    restore the frames, or delete it, never discarded by the failed run."""


class ImageRefused(UserError):
    """One image a model cannot restore (a 1 x 1 image for a blind-spot model, values out of proportion with the
    noise given): the command line reports it and goes on with the other images, unlike a problem of the run."""


class ImageReadError(UserError):
    """An image file could not be read; the message names the file and the reason."""


def unreadable_image(path: object, exc: Exception) -> ImageReadError:
    """The one-line error for a file that PIL / tifffile / astropy could not decode (they raise many types)."""
    reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if "cannot identify image file" in reason:
        reason = "not an image file (or an unsupported format)"
    return ImageReadError(f"{path}: cannot read image: {reason}")


def file_system_message(exc: OSError) -> str:
    """An OSError (permissions, a missing folder, a full disk) as one line naming the file."""
    where = f"{exc.filename}: " if exc.filename else ""
    return f"{where}{exc.strerror or exc}"


def short_repr(value: object) -> str:
    """``repr(value)`` on one line and cut short, for a one-line message (an array's repr runs to pages)."""
    text = " ".join(repr(value).split())
    return text if len(text) <= 60 else text[:57] + "..."
