"""The command-line toolkit of qnn-ref and pyrtlnet: parser, errors, integer types, progress.

Both CLIs keep the same contract, and this module is the part of it that is not about inference:

* bad input is one line on stderr saying what is wrong and what to do, never a traceback;
* exit status 2 for a usage error (:class:`UsageError`, or argparse's own), 1 for a failure
  (:class:`CommandError`, a model or data error, an :class:`OSError`), 130 for Ctrl-C, and a
  quiet 141 when whoever reads stdout stops reading (``| head -1``);
* results go to stdout, progress bars to stderr and only on a terminal;
* output paths are checked before any work starts; a file is written after the results are
  printed, whole or not at all (:func:`write_file`), and named on one line (``wrote out.npz``).

A command is a :data:`Handler` registered with :func:`add_command`; :func:`dispatch` parses the
command line and runs the chosen handler under :func:`run_main`.
"""

import argparse
import importlib.metadata
import os
import sys
import tempfile
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, NoReturn, TextIO

from tqdm import tqdm

from ._data import DataError
from ._model import ModelError
from ._train import TrainingError

__all__ = [
    "ArgumentParser",
    "CommandError",
    "Handler",
    "UsageError",
    "add_command",
    "add_version_argument",
    "check_output_directory",
    "check_output_file",
    "dispatch",
    "non_negative_int",
    "plural",
    "positive_int",
    "progress",
    "run_main",
    "write_file",
]

#: A command: the parsed arguments and the stream for results in, the exit status out.
Handler = Callable[[argparse.Namespace, TextIO], int]

#: Exit status when stdout is closed by its reader: 128 + SIGPIPE, as a shell reports it.
_BROKEN_PIPE = 141


class UsageError(Exception):
    """The command line asks for something impossible; the CLI exits with status 2.

    The message is one line saying what is wrong and what to do.
    """


class CommandError(Exception):
    """The command was valid but failed; the CLI exits with status 1.

    The message is one line saying what is wrong and what to do.
    """


class ArgumentParser(argparse.ArgumentParser):
    """An :class:`argparse.ArgumentParser` whose errors are one line on stderr, exit status 2.

    argparse normally prints the usage before the error; the CLI contract is one line saying
    what is wrong and what to do, so this prints ``prog: error: message (see prog --help)``.
    Sub-parsers made with ``add_subparsers`` are :class:`CommandParser`\\ s, so an error in a
    command's options points at that command's ``--help``.
    """

    def error(self, message: str) -> NoReturn:
        """Print ``message`` as one line and exit with status 2."""
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")

    def add_subparsers(self, **kwargs):  # type: ignore[no-untyped-def]
        """As argparse's, with :class:`CommandParser` for the commands' parsers."""
        kwargs.setdefault("parser_class", CommandParser)
        return super().add_subparsers(**kwargs)


class CommandParser(ArgumentParser):
    """The parser of one command: it reports arguments it does not know itself.

    argparse hands a command's unknown arguments back to the main parser, whose error would
    point at ``prog --help`` instead of ``prog command --help``.
    """

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        """Parse as argparse does, but fail on arguments this command does not take."""
        parsed, extras = super().parse_known_args(args, namespace)
        if extras:
            self.error(f"unrecognized arguments: {' '.join(extras)}")
        return parsed, extras


def add_command(
    commands: "argparse._SubParsersAction[ArgumentParser]",
    name: str,
    handler: Handler,
    *,
    help: str,
    description: str | None = None,
) -> ArgumentParser:
    """Add a command to a CLI: its sub-parser, dispatching to ``handler``.

    :param commands: The result of the main parser's ``add_subparsers(dest="command")``.
    :param name: The command's name.
    :param handler: What runs it (see :func:`dispatch`).
    :param help: One line for the main ``--help``'s command list.
    :param description: The command's own ``--help`` text (default: ``help`` as a sentence).
    :returns: The command's parser, to add its options to.
    """
    parser = commands.add_parser(
        name, help=help, description=description or help[0].upper() + help[1:] + "."
    )
    parser.set_defaults(handler=handler)
    return parser


def add_version_argument(parser: argparse.ArgumentParser, *distributions: str) -> None:
    """Add ``--version``: the installed version of each distribution, the first named first.

    :param parser: The main parser.
    :param distributions: Distribution names, e.g. ``"pyrtlnet", "qnn-ref"``.
    """
    versions = [f"{name} {importlib.metadata.version(name)}" for name in distributions]
    text = versions[0] + (f" ({', '.join(versions[1:])})" if len(versions) > 1 else "")
    parser.add_argument("--version", action="version", version=text)


def _int_at_least(text: str, minimum: int, kind: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = minimum - 1
    if value < minimum:
        raise argparse.ArgumentTypeError(f"must be a {kind} integer, not {text!r}")
    return value


def positive_int(text: str) -> int:
    """argparse type: an integer of at least 1."""
    return _int_at_least(text, 1, "positive")


def non_negative_int(text: str) -> int:
    """argparse type: an integer of at least 0."""
    return _int_at_least(text, 0, "non-negative")


def plural(count: int, word: str, many: str | None = None) -> str:
    """``count`` with thousands separators and ``word`` in the right number: ``1 image``,
    ``1,000 images``.

    :param count: How many.
    :param word: The singular.
    :param many: The plural, if it is not ``word + "s"``.
    """
    return f"{count:,} {word if count == 1 else many or word + 's'}"


def check_output_file(path: Path, *, flag: str) -> None:
    """Check, before any work, that a file can be written at ``path`` (``--dump``, ``--json``).

    :param path: The file the command will write.
    :param flag: The option that named it, for the message.
    :raises UsageError: if ``path`` is a directory, its directory does not exist or is not a
        directory, or no file can be created there.
    """
    if path.is_dir():
        raise UsageError(f"{flag} {path}: is a directory; give a file name")
    _check_directory(path.parent, path, flag=flag)


def check_output_directory(path: Path, *, flag: str) -> None:
    """Check, before any work, that files can be written in directory ``path`` (``--output``).

    The directory need not exist: the command creates it and its parents.

    :param path: The directory the command will write into.
    :param flag: The option that named it, for the message.
    :raises UsageError: if ``path`` or a parent is a file, or nothing can be created there.
    """
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise UsageError(f"{flag} {path}: {existing} is not a directory; choose another path")
    _check_directory(existing, path, flag=flag)


def _check_directory(directory: Path, path: Path, *, flag: str) -> None:
    directory = directory if str(directory) else Path(".")
    if not directory.exists():
        raise UsageError(
            f"{flag} {path}: directory {directory} does not exist; create it or choose another path"
        )
    if not directory.is_dir():
        raise UsageError(f"{flag} {path}: {directory} is not a directory; choose another path")
    try:
        with tempfile.TemporaryFile(dir=directory):
            pass
    except OSError as error:
        raise UsageError(
            f"{flag} {path}: cannot write in {directory} ({error.strerror or error}); choose "
            "another path"
        ) from None


def write_file(path: Path, write: Callable[[IO[bytes]], None]) -> None:
    """Write a file whole or not at all: into a temporary file beside it, then renamed.

    An interrupted or failed write leaves no half-written ``path`` behind (and an old file of
    that name untouched). The name is used as given: ``--dump out`` writes ``out``.

    :param path: The file to write.
    :param write: Writes the contents to the binary file it is given.
    """
    temporary = path.with_name(f".{path.name}.{os.getpid()}.part")
    try:
        with open(temporary, "xb") as file:  # the mode bits follow the umask, as for `path`
            write(file)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def progress(total: int, *, desc: str, quiet: bool, unit: str = "image") -> tqdm:
    """A progress bar over ``total`` items on stderr (so results on stdout stay clean).

    The bar is drawn only when stderr is a terminal, so logs and pipes get no bar debris.

    :param total: Number of items.
    :param desc: Text in front of the bar, e.g. the backend's name.
    :param quiet: Hide the bar (it still counts).
    :param unit: What an item is.
    """
    return tqdm(
        total=total,
        desc=desc,
        unit=unit,
        file=sys.stderr,
        disable=True if quiet else None,
        leave=False,
    )


def run_main(fn: Callable[[], int], *, prog: str, stderr: TextIO | None = None) -> int:
    """Run a command, turning expected errors into one line on stderr and an exit status.

    :class:`UsageError` exits with 2; :class:`CommandError`, :class:`~qnn_ref.ModelError`,
    :class:`~qnn_ref.DataError`, :class:`~qnn_ref.TrainingError` and :class:`OSError` with 1;
    Ctrl-C with 130. A closed stdout (the reader of a pipe has gone) ends the command with 141
    and no message. Anything else is a bug and keeps its traceback.

    :param fn: The command; returns its exit status.
    :param prog: The program name in front of the message, e.g. ``"qnn-ref litert"``.
    :param stderr: Where the message goes (default :data:`sys.stderr`).
    :returns: The exit status.
    """
    err = sys.stderr if stderr is None else stderr
    try:
        with warnings.catch_warnings():
            # LiteRT warns on every interpreter that keeps all tensors; the references must.
            warnings.filterwarnings("ignore", message=".*experimental_preserve_all_tensors")
            status = fn()
            sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's exit
            return status
    except UsageError as error:
        status, message = 2, str(error)
    except (CommandError, ModelError, DataError, TrainingError) as error:
        status, message = 1, str(error)
    except BrokenPipeError:
        _silence_stdout()
        return _BROKEN_PIPE
    except OSError as error:
        target = f"{error.filename}: " if error.filename else ""
        status, message = 1, f"{target}{error.strerror or error}; check the path and permissions"
    except KeyboardInterrupt:
        status, message = 130, "interrupted"
    one_line = " ".join(line.strip() for line in message.splitlines() if line.strip())
    print(f"{prog}: error: {one_line}", file=err)
    return status


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so flushing it at exit cannot fail a second time."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # stdout is not a file descriptor (e.g. under a test)
        pass


def dispatch(parser: ArgumentParser, argv: Sequence[str] | None) -> int:
    """Parse ``argv`` and run the chosen command's handler under :func:`run_main`.

    With no command, prints the usage and the list of commands on stderr and returns 2.

    :param parser: The main parser; its ``add_subparsers`` must use ``dest="command"`` and
        each command must come from :func:`add_command`.
    :param argv: The arguments after the program name (``None``: :data:`sys.argv`).
    :returns: The exit status.
    """
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help, --version, or a usage error argparse reported
        return int(exit_.code or 0)
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        sys.stderr.write(parser.format_help())
        return 2
    return run_main(lambda: handler(args, sys.stdout), prog=f"{parser.prog} {args.command}")
