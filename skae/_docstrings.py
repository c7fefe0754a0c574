"""One text for what the estimators share: docstring entries filled from another class's.

A numpydoc entry (``name : type`` followed by indented lines) that has no
description of its own gets the description of the entry of the same name
in the source docstring, so that :class:`~skae.VAETransformer` documents
every shared parameter and attribute without a copy of
:class:`~skae.AutoencoderTransformer`'s text to keep in step.
"""

import inspect
import re

_SECTION = re.compile(r"^(\w[\w ]*)\n-+$", re.MULTILINE)
_ENTRY = re.compile(r"^(\w+) : ")
_SHARED_SECTIONS = ("Parameters", "Attributes")


def _sections(doc):
    """``{title: (start, end)}`` of each section body in ``doc`` (cleaned)."""
    matches = list(_SECTION.finditer(doc))
    ends = [match.start() for match in matches[1:]] + [len(doc)]
    return {m.group(1): (m.end() + 1, end) for m, end in zip(matches, ends, strict=True)}


def _entries(lines):
    """``[(name, header line, description lines)]`` of a section's lines."""
    entries = []
    for line in lines:
        match = _ENTRY.match(line)
        if match:
            entries.append((match.group(1), line, []))
        elif entries and (line.startswith("    ") or not line.strip()):
            entries[-1][2].append(line)
    return entries


def _descriptions(doc, title):
    start, end = _sections(doc).get(title, (0, 0))
    entries = _entries(doc[start:end].splitlines())
    return {name: body for name, _, body in entries if any(line.strip() for line in body)}


def with_shared_descriptions(doc, source):
    """``doc`` (cleaned) with each undescribed Parameters or Attributes entry
    described as the entry of the same name in ``source``."""
    doc, source = inspect.cleandoc(doc), inspect.cleandoc(source)
    for title in _SHARED_SECTIONS:
        known = _descriptions(source, title)
        bounds = _sections(doc).get(title)
        if bounds is None:
            continue
        start, end = bounds
        lines = doc[start:end].rstrip("\n").splitlines()
        filled = []
        for index, line in enumerate(lines):
            filled.append(line)
            match = _ENTRY.match(line)
            following = lines[index + 1] if index + 1 < len(lines) else ""
            if match and not following.startswith("    ") and match.group(1) in known:
                filled.extend(part for part in known[match.group(1)] if part.strip())
        doc = doc[:start] + "\n".join(filled) + "\n\n" + doc[end:]
    return doc.rstrip() + "\n"
