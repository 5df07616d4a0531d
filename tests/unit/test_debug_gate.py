"""Who may run DEBUG under --enable-debug-command: Redis 7's allowProtectedAction(), by value."""
import pytest

from hypercache.commands.server import debug_allowed


@pytest.mark.parametrize("mode, addr, allowed", [
    ("no", "127.0.0.1:5000", False),
    ("yes", "10.0.0.7:5000", True),
    ("local", "127.0.0.1:5000", True),
    ("local", "[::1]:5000", True),
    ("local", "127.0.0.2:5000", False),        # loopback, but not what islocalClient() accepts
    ("local", "[::ffff:127.0.0.1]:5000", False),
    ("local", "10.0.0.7:5000", False),
])
def test_debug_allowed(mode, addr, allowed):
    assert debug_allowed(mode, addr) is allowed
