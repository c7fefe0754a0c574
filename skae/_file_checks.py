"""Reading a model file's header as hostile input: strict JSON, typed fields, a digest.

Everything here raises :class:`FileContentError` (a ``ValueError``) naming
the field at fault; nothing here builds a network or touches torch's
optimisers. :func:`digest` is the integrity check of format 3: one SHA-256
(or, with a key, HMAC-SHA256) over the header and every tensor.
"""

import hashlib
import hmac
import json
import math

import numpy as np
import torch

# Our documents nest 6 levels deep at most; a deeper one is not ours, and
# parsing an unbounded depth recursively is how a small file exhausts the stack.
MAX_DEPTH = 32
# Integers in a file count things (epochs, rows, features, units): beyond
# 2**62 none is real, and floats of larger ones overflow.
MAX_INT = 1 << 62
# A model's description grows with its features (their means and names, about
# 30 characters each): 64 Mi characters is over 2 million features, and keeps
# the parsed document (Python objects, up to 24x the text) within a few GiB.
MAX_DESCRIPTION_CHARACTERS = 1 << 26


class FileContentError(ValueError):
    """A field of a model file is missing, of the wrong type or out of range."""


class _Refused:
    """A number JSON allows but a model file does not, kept until its field is known."""

    __slots__ = ("problem",)

    def __init__(self, problem):
        self.problem = problem

    def __repr__(self):
        return f"<{self.problem}>"


def _number_parsers(refused):
    """JSON's number hooks: each number a file may not hold becomes a :class:`_Refused`
    (appended to ``refused``), so that the error can name its field."""

    def refuse(problem):
        refused.append(_Refused(problem))
        return refused[-1]

    def finite_float(text):
        value = float(text)
        return value if math.isfinite(value) else refuse(f"the number {text[:20]} is not finite")

    def bounded_int(text):
        if len(text.lstrip("-")) > 19:  # never converted: int() of a huge text is slow
            return refuse(f"the integer {text[:20]}... is out of range")
        value = int(text)
        if abs(value) > MAX_INT:
            return refuse(f"the integer {value} is out of range (at most 2**62 in size)")
        return value

    def constant(name):
        return refuse(f"{name} is not a finite number")

    return {"parse_float": finite_float, "parse_int": bounded_int, "parse_constant": constant}


def _path_to(target, tree, path=""):
    """Where ``target`` lies in ``tree`` (``"a.b[2]"``), or None."""
    if tree is target:
        return path or "the top level"
    if isinstance(tree, dict):
        children = ((f"{path}.{key}" if path else str(key), value) for key, value in tree.items())
    elif isinstance(tree, list):
        children = ((f"{path}[{index}]", value) for index, value in enumerate(tree))
    else:
        return None
    for child_path, child in children:
        found = _path_to(target, child, child_path)
        if found is not None:
            return found
    return None


def _nesting_depth(text):
    """The deepest nesting of arrays and objects in JSON ``text``, strings skipped.

    Linear in the text (a regular expression over strings backtracks
    quadratically on a string of escaped quotes that never closes): escape
    pairs are removed first, so every quote left opens or closes a string.
    """
    unescaped = text.replace("\\\\", "").replace('\\"', "").encode("utf-8", "surrogatepass")
    data = np.frombuffer(unescaped, dtype=np.uint8)
    outside = np.bitwise_xor.accumulate((data == ord('"')).view(np.uint8)) == 0
    steps = np.zeros(len(data), dtype=np.int8)
    steps[(data == ord("[")) | (data == ord("{"))] = 1
    steps[(data == ord("]")) | (data == ord("}"))] = -1
    steps[~outside] = 0
    return int(np.cumsum(steps, dtype=np.int32).max(initial=0))


def parse_json(text, what):
    """``text`` parsed as strict JSON: finite numbers, bounded integers and depth.

    Raises
    ------
    FileContentError
        Naming ``what``, the field (for a number out of range) and the problem.
    """
    if not isinstance(text, str):
        raise FileContentError(f"{what} is missing")
    if len(text) > MAX_DESCRIPTION_CHARACTERS:
        raise FileContentError(
            f"{what} holds {len(text):,} characters (at most {MAX_DESCRIPTION_CHARACTERS:,})"
        )
    depth = _nesting_depth(text)
    if depth > MAX_DEPTH:
        raise FileContentError(f"{what} nests {depth} levels deep (at most {MAX_DEPTH})")
    refused = []
    try:
        document = json.loads(text, **_number_parsers(refused))
    except ValueError as error:
        raise FileContentError(f"{what} is not valid JSON ({error})") from None
    if refused:  # nesting is bounded: the search recurses MAX_DEPTH levels at most
        where = _path_to(refused[0], document) or "a field overwritten by its duplicate"
        raise FileContentError(f"{what}: {where[:200]}: {refused[0].problem}")
    return document


# ------------------------------------------------------------------ fields


def field(document, name, where="the description"):
    """``document[name]``, or an error saying it is missing."""
    if not isinstance(document, dict):
        raise FileContentError(f"{where} must be a JSON object, got {type(document).__name__}")
    if name not in document:
        raise FileContentError(f"{where} has no {name!r}")
    return document[name]


def only_keys(document, allowed, where):
    """Raise unless ``document`` is an object whose keys all lie in ``allowed``."""
    if not isinstance(document, dict):
        raise FileContentError(f"{where} must be a JSON object, got {type(document).__name__}")
    unknown = sorted(set(document) - set(allowed))
    if unknown:
        raise FileContentError(f"{where} has unknown fields {unknown}")


def integer(value, name, low=0, high=MAX_INT):
    """``value`` as an int in ``[low, high]``."""
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise FileContentError(f"{name} must be an integer in [{low}, {high}]; got {value!r}")
    return value


def number(value, name, low=-math.inf, high=math.inf):
    """``value`` as a finite float in ``[low, high]``."""
    if (
        not isinstance(value, (int, float))
        or isinstance(value, bool)
        or not math.isfinite(value)
        or not low <= value <= high
    ):
        raise FileContentError(f"{name} must be a finite number in [{low}, {high}]; got {value!r}")
    return float(value)


def numbers(values, name, length=None, low=-math.inf):
    """``values`` as a list of finite floats (of ``length`` items when given)."""
    if not isinstance(values, list) or (length is not None and len(values) != length):
        size = "a list" if length is None else f"a list of {length}"
        raise FileContentError(f"{name} must be {size} numbers")
    return [number(value, f"an entry of {name}", low=low) for value in values]


# ---------------------------------------------------------------- integrity


def digest(metadata, tensors, key=None):
    """The integrity digest of a file: its metadata (but the digests) and tensors.

    SHA-256 without ``key``; HMAC-SHA256 with it (bytes or str). Each
    tensor counts by name, dtype, shape and bytes, in name order.
    """
    hasher = hashlib.sha256() if key is None else hmac.new(_key_bytes(key), digestmod="sha256")
    header = {name: value for name, value in metadata.items() if name not in ("sha256", "hmac")}
    hasher.update(json.dumps(header, sort_keys=True).encode())
    update_with_tensors(hasher, tensors)
    return hasher.hexdigest()


def update_with_tensors(hasher, tensors, name_lengths=True):
    """Feed every tensor of ``tensors`` (name, dtype, shape, bytes) to ``hasher``.

    ``name_lengths`` prefixes each name with its length, so that no two sets
    of tensors feed the same bytes (format 2's checksum did without).
    """
    for name in sorted(tensors):
        tensor = tensors[name]
        prefix = f"{len(name)}:" if name_lengths else ""
        hasher.update(f"{prefix}{name}:{tensor.dtype}:{tuple(tensor.shape)};".encode())
        hasher.update(tensor.contiguous().view(-1).view(dtype=torch.uint8).numpy().tobytes())


def check_key(key):
    """Raise a ValueError unless ``key`` is None or a non-empty str or bytes."""
    if key is not None:
        _key_bytes(key)


def _key_bytes(key):
    data = key
    if isinstance(key, str):
        try:
            data = key.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError(
                f"key must be encodable as UTF-8; got a str holding a lone surrogate: {key!r:.40}."
            ) from None
    if isinstance(data, (bytes, bytearray)) and len(data) > 0:
        return bytes(data)
    raise ValueError(f"key must be a non-empty str or bytes; got {key!r:.40}.")


def same_digest(expected, found):
    """Compare two hex digests in constant time (``found`` may be anything)."""
    if not isinstance(found, str) or not found.isascii():
        return False  # compare_digest refuses non-ASCII strings with a TypeError
    return hmac.compare_digest(expected, found)
