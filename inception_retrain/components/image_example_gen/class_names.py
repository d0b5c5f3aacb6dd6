"""The one rule for class names, shared by the folder layout check and the manifest reader so
that both refuse the same names."""
import os
import unicodedata
from typing import Optional

# A class name becomes a line of tf.Transform's vocabulary file and of the model's labels.txt
# (one name per line, read back stripped) and a string in tf.Examples, metrics and reports.
MAX_CLASS_NAME_CHARS = 128
# Unicode categories refused anywhere in a name: control (Cc: \n, \t, \x85), format (Cf:
# zero-width and direction marks), surrogates (Cs: bytes that are not UTF-8), private use (Co),
# unassigned (Cn), line and paragraph separators (Zl, Zp: line breaks to str.splitlines).
_REFUSED_CATEGORIES = ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp")


def shown_name(name: str) -> str:
    """A file name for a message: printable, its undecodable bytes as \\x escapes."""
    text = os.fsencode(name).decode("utf-8", "backslashreplace")
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def not_utf8(name: str) -> bool:
    """True for a name whose bytes are not UTF-8 (os.listdir hands them as surrogates)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def class_name_problem(name: str) -> Optional[str]:
    """Why a folder name cannot be a class name, or None. A class name is valid UTF-8, 1 to
    MAX_CLASS_NAME_CHARS printable characters, with no leading or trailing whitespace and no
    control, invisible or line-breaking character: tf.Transform's vocabulary drops names holding
    a newline or only whitespace, and labels.txt is read back one stripped line per name, so
    anything else trains on one set of classes and reports on another."""
    if not_utf8(name):
        return "is not valid UTF-8"
    if not name.strip():
        return "is empty or only whitespace"
    if name != name.strip():
        return "has leading or trailing whitespace"
    for char in name:
        if unicodedata.category(char) in _REFUSED_CATEGORIES:
            return (f"holds the control or invisible character U+{ord(char):04X} "
                    f"({unicodedata.name(char, unicodedata.category(char))})")
    if len(name) > MAX_CLASS_NAME_CHARS:
        return f"is {len(name)} characters long, above {MAX_CLASS_NAME_CHARS}"
    return None
