"""One browser tab without a browser: Streamlit's websocket protocol (protobuf BackMsg / ForwardMsg from
`streamlit.proto`, the wire format), the widget values the tab holds, and every image a script run shows."""

from __future__ import annotations

import asyncio
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field

from streamlit.proto.Alert_pb2 import Alert
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.WidgetStates_pb2 import WidgetState
from websockets.asyncio.client import connect

from explorer.logic.sample import FIRST_BLOCK_NOTE

UPSTREAM_HEADER = "X-Upstream"  # added by the shipped nginx config: the replica that answered


@dataclass
class RunResult:
    """What one script run sent back to a session."""

    seconds: float
    status: str
    exceptions: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    images: list[str] = field(default_factory=list)
    first_block_only: bool = False  # the sampling page answered with its busy-server first block


class Session:
    """One browser tab: a websocket, the widget values it has set, and the page it is on."""

    def __init__(self, server_url: str, timeout: float = 180):
        self.ws_url = server_url.replace("http://", "ws://") + "/_stcore/stream"
        self.server_url = server_url
        self.timeout = timeout
        self.widget_ids: dict[str, str] = {}  # user key -> widget id, read from the page's elements
        self.states: dict[str, WidgetState] = {}  # widget id -> the value this tab holds
        self.fragments: dict[str, str] = {}  # widget id -> the st.fragment it was drawn in (absent: none)
        self._changed: set[str] = set()  # widgets set since the last run
        self.page_hash = ""
        self.cookies: dict[str, str] = {}
        self._one_shot: set[str] = set()  # buttons pressed for the next run only
        self.upstreams: set[str] = set()  # the replicas (X-Upstream) that answered this session, through a proxy
        self._ws = None

    async def __aenter__(self) -> Session:
        # A browser loads the page first: through a proxy, that answer sets the sticky-session cookie.
        await asyncio.to_thread(self._fetch, "/", False)
        # The browser offers the "streamlit" subprotocol; max_size=None because a page's plotly chart is large.
        self._ws = await connect(self.ws_url, subprotocols=["streamlit"], max_size=None, open_timeout=self.timeout,
                                 additional_headers=self._headers())
        self._note_upstream(self._ws.response.headers.get(UPSTREAM_HEADER))
        return self

    def _headers(self) -> dict[str, str]:
        return {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())} if self.cookies else {}

    def _note_upstream(self, value: str | None) -> None:
        if value:
            self.upstreams.add(value)

    async def __aexit__(self, *exc) -> None:
        await self._ws.close()

    def click(self, key: str) -> None:
        """Press a button by its key, for the next rerun only."""
        self.set_value(key, trigger_value=True)
        self._one_shot.add(self.widget_ids[key])

    def set_value(self, key: str, **value) -> None:
        """Set a widget by its key: set_value("mean", double_array_value=[3.0]), ("seed", int_value=7)."""
        widget_id = self.widget_ids[key]
        state = WidgetState(id=widget_id)
        for name, v in value.items():
            target = getattr(state, name)
            if hasattr(target, "data"):
                target.data.extend(v)
            else:
                setattr(state, name, v)
        self.states[widget_id] = state
        self._changed.add(widget_id)

    async def rerun(self) -> RunResult:
        """Send this tab's widget values, read the run's messages to the end, fetch its images. Like a browser,
        when every widget set since the last run sits in one st.fragment, only that fragment is asked to rerun."""
        message = BackMsg()
        message.rerun_script.query_string = ""
        message.rerun_script.page_script_hash = self.page_hash
        message.rerun_script.widget_states.widgets.extend(self.states.values())
        fragments = {self.fragments.get(widget_id, "") for widget_id in self._changed}
        if len(fragments) == 1 and "" not in fragments:
            message.rerun_script.fragment_id = fragments.pop()
        self._changed = set()
        for widget_id in self._one_shot:  # a button is pressed for one run, as in the browser
            self.states.pop(widget_id, None)
        self._one_shot = set()
        start = time.perf_counter()
        await self._ws.send(message.SerializeToString())
        result = RunResult(0.0, "timeout")
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                data = await asyncio.wait_for(self._ws.recv(), max(0.1, deadline - time.monotonic()))
            except asyncio.TimeoutError:
                raise TimeoutError(f"no end of the script run within {self.timeout:.0f} s") from None
            forward = ForwardMsg()
            forward.ParseFromString(data)
            kind = forward.WhichOneof("type")
            if kind == "navigation" and forward.navigation.page_script_hash:
                self.page_hash = forward.navigation.page_script_hash
            elif kind == "delta" and forward.delta.WhichOneof("type") == "new_element":
                self._read_element(forward.delta.new_element, result, forward.delta.fragment_id)
            elif kind == "script_finished":
                result.status = ForwardMsg.ScriptFinishedStatus.Name(forward.script_finished)
                break
        await asyncio.gather(*(asyncio.to_thread(self._fetch, url) for url in result.images))
        result.seconds = time.perf_counter() - start
        return result

    def _read_element(self, element, result: RunResult, fragment_id: str = "") -> None:
        kind = element.WhichOneof("type")
        body = getattr(element, kind)
        widget_id = getattr(body, "id", "")
        if widget_id.startswith("$$ID-"):
            self.widget_ids[widget_id.split("-", 2)[2]] = widget_id
            if fragment_id:
                self.fragments[widget_id] = fragment_id
            else:
                self.fragments.pop(widget_id, None)
        if kind == "exception":
            result.exceptions.append(f"{body.type}: {body.message}"[:300])
        elif kind == "alert" and body.format == Alert.ERROR:
            result.page_errors.append(body.body[:300])
        elif kind == "alert" and body.body.startswith(FIRST_BLOCK_NOTE):
            result.first_block_only = True
        elif kind == "imgs":
            result.images += [img.url for img in body.imgs if img.url.startswith("/")]

    def _fetch(self, path: str, media: bool = True) -> None:
        request = urllib.request.Request(self.server_url + path, headers=self._headers())
        with urllib.request.urlopen(request, timeout=self.timeout) as answer:
            self._note_upstream(answer.headers.get(UPSTREAM_HEADER))
            for header in answer.headers.get_all("Set-Cookie") or []:
                name, _, rest = header.partition("=")
                self.cookies[name.strip()] = urllib.parse.unquote(rest.split(";", 1)[0])
            if answer.status != 200 or (media and not answer.read()):
                raise OSError(f"GET {path}: status {answer.status}")
