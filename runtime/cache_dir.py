"""The folder where sigforge keeps what it caches: LM answers (:mod:`.cache`), and the
compiler's compiled template and Lark grammar. A module of its own, so that finding the
folder does not import the cache."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

#: the environment variable that names the folder
CACHE_DIR_ENV = "SIGFORGE_CACHE_DIR"


def cache_dir() -> Path:
    """``$SIGFORGE_CACHE_DIR``, else the platform's user cache dir for sigforge."""
    from pathlib import Path

    directory = os.environ.get(CACHE_DIR_ENV)
    if not directory:
        import platformdirs

        directory = platformdirs.user_cache_dir("sigforge")
    return Path(directory)
