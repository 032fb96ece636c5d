"""Every page another page sends the user to (st.switch_page, st.page_link) is a page the app has: a renamed view
must not leave a button that raises when clicked."""

from __future__ import annotations

import re
from pathlib import Path

EXPLORER = Path(__file__).resolve().parent.parent / "explorer"
LINK = re.compile(r"""(?:switch_page|page_link)\(\s*["']([^"']+\.py)["']""")


def test_every_page_link_points_at_a_page_of_the_app():
    app = (EXPLORER / "app.py").read_text()
    links = [(path, target) for path in EXPLORER.rglob("*.py") for target in LINK.findall(path.read_text())]
    assert links, "no page links found: the pattern no longer matches the code"
    for path, target in links:
        assert (EXPLORER / target).is_file(), f"{path.relative_to(EXPLORER)} links to {target}, which does not exist"
        assert f'"{target}"' in app or f"'{target}'" in app, f"{target} is not a page of explorer/app.py"
