"""The HTTP API under /api: a router that runs the auth pipeline, and the route groups.

Each group is a module with one `add_*_routes(router, ...)`; a new group is one more
module and one more call in `Bastion.__init__`. Runs (generate, stream) share runs.py;
the memory routes and runs share the owner checks of scope.py; sse.py streams events.
"""

from .agents import add_agent_routes
from .common import HTTPError, json_response, read_json_object
from .custom import CustomRoute, add_custom_routes, route
from .memory import add_memory_routes
from .router import Handler, Router, route_path
from .system import add_system_routes
from .tools import add_tool_routes

__all__ = [
    "CustomRoute",
    "HTTPError",
    "Handler",
    "Router",
    "add_agent_routes",
    "add_custom_routes",
    "add_memory_routes",
    "add_system_routes",
    "add_tool_routes",
    "json_response",
    "read_json_object",
    "route",
    "route_path",
]
