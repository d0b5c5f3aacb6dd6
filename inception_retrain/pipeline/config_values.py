"""How text from flags and YAML files becomes checked, typed configuration values, and the
error every configuration check raises (naming the key). No TensorFlow import here."""
import difflib
import math
import typing
from typing import Any, Sequence, Tuple


class ConfigError(ValueError):
    """A configuration value is unknown, mistyped or impossible; the message names the key."""


def nearest_choice(value: Any, allowed: Sequence[str]) -> str:
    """" (did you mean warn?)" for a mistyped choice, "" when nothing is close."""
    close = difflib.get_close_matches(str(value), list(allowed), n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""


def parse_string_list(key: str, text: str) -> Any:
    """A list from a flag: YAML's `[a, b]` (as in config files) or space-separated `a b`."""
    if not text.strip().startswith("["):
        return text.split()
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ConfigError(f"{key}: {text!r} is not a list like [a, b]: {err}") from None


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def coerce(key: str, value: Any, annotation) -> Any:
    """Checks one value against its field type; strings from flags are parsed."""
    origin = typing.get_origin(annotation)
    if origin in (tuple, Tuple):
        if isinstance(value, str):
            value = parse_string_list(key, value)
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{key} must be a list of strings, got {value!r}")
        return tuple(value)
    if annotation is bool:
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
            return value.lower() in ("true", "1", "yes")
        if not isinstance(value, bool):
            raise ConfigError(f"{key} must be true or false, got {value!r}")
        return value
    if annotation in (int, float):
        if isinstance(value, str):
            try:
                value = annotation(value)
            except ValueError:
                raise ConfigError(f"{key} must be "
                                  f"{'an integer' if _is_number(value) else 'a number'} "
                                  f"({annotation.__name__}), got {value!r}") from None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (
                annotation is int and not float(value).is_integer()):
            raise ConfigError(f"{key} must be {'an integer' if annotation is int else 'a number'}"
                              f", got {value!r}")
        if not math.isfinite(value):  # NaN passes every range check; inf is no setting
            raise ConfigError(f"{key} must be a finite number, got {value!r}")
        return annotation(value)
    if annotation is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key} must be a string, got {value!r}")
        return value
    raise ConfigError(f"{key} cannot be set")


def unique_key_loader():
    """yaml.SafeLoader refusing a key given twice in one mapping (PyYAML keeps the last one
    silently, so a second `training:` section would replace the first)."""
    import yaml

    class UniqueKeyLoader(yaml.SafeLoader):
        def construct_mapping(self, node, deep=False):
            seen = {}
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=deep)
                line = key_node.start_mark.line + 1
                try:
                    first = seen.get(key)
                except TypeError:  # an unhashable key: SafeLoader reports it
                    continue
                if first is not None:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key {key!r} (first on line {first}, again on "
                        f"line {line}); give each key once", key_node.start_mark)
                seen[key] = line
            return super().construct_mapping(node, deep=deep)

    return UniqueKeyLoader
