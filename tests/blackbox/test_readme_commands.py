"""The README's list of Redis commands not implemented stays true: every command (and subcommand)
redis-server 7.0.15 lists and a node does not is named there, and nothing named there is served."""
from __future__ import annotations

import re

from tests.nodes import REPO, call


def _section() -> str:
    readme = (REPO / "README.md").read_text()
    start = readme.index("### Redis commands not implemented")
    return readme[start:readme.index("\n## ", start)]


def _names(owner) -> set[str]:
    return {name.decode() for name in call(owner, "COMMAND", "LIST")}


def test_every_command_redis_has_and_a_node_lacks_is_in_the_readme(node, redis_server) -> None:
    section = _section()
    words = set(re.findall(r"[A-Z][A-Z0-9_-]*", section))
    missing = sorted(_names(redis_server) - _names(node))
    unlisted = []
    for name in missing:
        container, _, sub = name.partition("|")
        if container.startswith("x") and "`X*`" in section:
            continue
        if sub:
            if container.upper() in words and (sub.upper() in words or f"`{container.upper()} *`" in section):
                continue
        elif container.upper() in words:
            continue
        unlisted.append(name)
    assert not unlisted, f"not served and not in the README's list: {unlisted}"


def test_nothing_the_readme_lists_as_missing_is_served(node) -> None:
    section = _section()
    served = _names(node)
    listed = set(re.findall(r"`([A-Z][A-Z_-]+)`", section))
    claimed_missing = {n.lower() for n in listed} - {"dump", "restore", "pfadd", "pfcount", "pfmerge",
                                                      "lpush", "blmove"}
    wrongly = sorted(claimed_missing & served)
    assert not wrongly, f"the README lists these as not implemented, yet the node serves them: {wrongly}"
