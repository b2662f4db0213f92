"""A hatch build hook: editable installs get ``hookgate_plugins``, pointing at the checkout's plugins/.

A wheel ships the repository's ``plugins/`` folder as ``hookgate_plugins`` (the ``sources`` option),
but hatch cannot rename a folder for an editable install. So an editable install gets a one-line
``hookgate_plugins/__init__.py`` whose ``__path__`` is the checkout's folder: the entry points load
the very files being edited, under the name they have once installed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface


class EditablePlugins(BuildHookInterface):
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name != "wheel" or version != "editable":
            return
        init = Path(self.directory) / "hookgate_plugins_editable" / "__init__.py"
        init.parent.mkdir(parents=True, exist_ok=True)
        folder = Path(self.root) / "plugins"
        init.write_text(f'"""The checkout\'s plugins/ folder (an editable install)."""\n\n__path__ = [{str(folder)!r}]\n')
        build_data["force_include_editable"][str(init)] = "hookgate_plugins/__init__.py"
