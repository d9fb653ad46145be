"""Sphinx configuration of the django-openai-capi documentation (``make docs``).

Built offline with warnings as errors: no intersphinx inventory is fetched, and the
reference tables (event types, settings, system checks) are generated from the code that
defines them by the ``capi_reference`` extension in ``_ext``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path[:0] = [str(ROOT), str(DOCS / "_ext")]
# The reference tables import the app, which reads Django settings.
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

import django  # noqa: E402

django.setup()

project = "django-openai-capi"
author = "django-openai-capi developers"
copyright = "django-openai-capi developers"

extensions = [
    "myst_parser",
    # The Python API reference is read from the docstrings, so it cannot drift.
    "sphinx.ext.autodoc",
    "capi_reference",
]
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3
source_suffix = {".md": "markdown"}
exclude_patterns = ["_build"]
suppress_warnings: list[str] = []
# Options and code in prose stay as typed: no "--since" turned into an en dash.
smartquotes = False

html_theme = "furo"
html_title = "django-openai-capi"
html_static_path = ["_static"]
