"""Run the README's "Use" block as a user would paste it; fail on any warning it prints.

The block must run to its end on a fresh install with the test extra and
print no warning: a default that warns every time teaches users to ignore
warnings. Python's default filters stay as they are (a library's internal
DeprecationWarning is not shown to users, so it does not count). Run it
from a scratch directory: the block writes model files.
"""

import re
import sys
import warnings
from pathlib import Path

readme = Path(sys.argv[1]).read_text()
use = readme.split("\n## Use\n", 1)[1]
block = re.search(r"```python\n(.*?)```", use, re.S).group(1)
shown = []
warnings.showwarning = lambda message, category, filename, lineno, *rest: shown.append(
    f"{filename}:{lineno}: {category.__name__}: {message}"
)
exec(compile(block, "README.md (Use block)", "exec"), {"__name__": "__main__"})
if shown:
    sys.exit("The README's Use block printed warnings:\n" + "\n".join(shown))
print(f"The README's Use block ran without a warning ({block.count(chr(10))} lines).")
