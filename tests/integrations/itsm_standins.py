"""Local stand-ins for ServiceNow, Jira and a Teams Workflows webhook: real HTTP servers on
127.0.0.1 that check each API's wire format and authentication as the vendors document them,
keep what they were sent, and fail on demand (500, 429 + Retry-After, slow, connection reset).

Request shapes follow the vendors' public documentation: ServiceNow's Table API
(``/api/now/table/{table}``, ``{"result": …}`` answers, ``sysparm_query`` / ``sysparm_fields`` /
``sysparm_display_value``, ``oauth_token.do``), Jira Cloud REST v3 (issues, transitions,
comments in Atlassian Document Format, ``/rest/api/3/search/jql``), and Teams Workflows' "post to a
channel when a webhook request is received" (a ``message`` with one Adaptive Card attachment,
28 KB at most, answered 202).
"""

from __future__ import annotations

import base64
import itertools
import json
import re
import socket
import struct
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from integrations.standins import Fault


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


class Reject(Exception):
    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        super().__init__(status)
        self.status, self.body, self.headers = status, body, headers or {}


@dataclass
class Standin:
    """One HTTP server. ``faults`` holds what the next requests get instead of an answer:
    ``500``, ``(429, seconds)``, ``("slow", seconds)``, ``"reset"``, or the conformance suite's
    :class:`~integrations.standins.Fault` (``fail(...)``). ``accepted``: the requests the vendor
    accepted (2xx)."""

    requests: list[Seen] = field(default_factory=list)
    accepted: list[Seen] = field(default_factory=list)
    faults: list[Any] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def fail(self, *faults: Fault) -> None:
        with self.lock:
            self.faults.extend(faults)

    def close(self) -> None:
        self.stop()

    def start(self) -> Standin:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_args: Any) -> None:
                pass

            def _any(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                split = urlsplit(self.path)
                seen = Seen(self.command, unquote(split.path), parse_qs(split.query, keep_blank_values=True),
                            {k.lower(): v for k, v in self.headers.items()}, body)
                with standin.lock:
                    standin.requests.append(seen)
                    fault = standin.faults.pop(0) if standin.faults else None
                if isinstance(fault, Fault):
                    if fault.delay:
                        time.sleep(fault.delay)
                    if fault.reset:
                        fault = "reset"
                    else:
                        body = fault.body
                        if fault.echo:
                            body = json.dumps({"error": "bad request", "you_sent": seen.headers,
                                               "body": seen.body.decode("utf-8", "replace")}).encode()
                        self._send(fault.status, fault.headers, body)
                        return
                if fault == "reset":
                    # an RST instead of an answer
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    self.close_connection = True
                    return
                if isinstance(fault, tuple) and fault[0] == "slow":
                    time.sleep(fault[1])
                try:
                    if isinstance(fault, int):
                        raise Reject(fault, {"error": {"message": "injected failure"}})
                    if isinstance(fault, tuple) and fault[0] == 429:
                        raise Reject(429, {"error": {"message": "rate limited"}}, {"Retry-After": str(fault[1])})
                    with standin.lock:
                        status, answer, headers = standin.handle(seen)
                except Reject as exc:
                    status, answer, headers = exc.status, exc.body, exc.headers
                except Exception as exc:  # a bug in the stand-in: say so loudly
                    status, answer, headers = 599, {"error": f"stand-in bug: {exc!r}"}, {}
                if status < 300:
                    with standin.lock:
                        standin.accepted.append(seen)
                data = b"" if answer is None else json.dumps(answer).encode()
                self._send(status, {**headers, **({"Content-Type": "application/json"} if data else {})}, data)

            def _send(self, status: int, headers: dict[str, str], data: bytes) -> None:
                try:
                    self.send_response(status)
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    pass  # the client gave up (a timeout): nothing to answer

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _any  # noqa: N815

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def handle(self, seen: Seen) -> tuple[int, Any, dict[str, str]]:
        raise NotImplementedError

    def calls(self, method: str, pattern: str = "") -> list[Seen]:
        return [r for r in self.requests if r.method == method and re.search(pattern, r.path)]


def _json_body(seen: Seen) -> Any:
    if not seen.headers.get("content-type", "").startswith("application/json"):
        raise Reject(415, {"error": {"message": "Content-Type must be application/json"}})
    try:
        return json.loads(seen.body)
    except ValueError:
        raise Reject(400, {"error": {"message": "malformed JSON"}}) from None


def _basic(seen: Seen) -> tuple[str, str] | None:
    header = seen.headers.get("authorization", "")
    if not header.startswith("Basic "):
        return None
    user, _, password = base64.b64decode(header[6:]).decode().partition(":")
    return user, password


# -- ServiceNow ----------------------------------------------------------------------------------
SN_FIELDS = {"short_description", "description", "impact", "urgency", "assignment_group", "caller_id",
             "category", "correlation_id", "correlation_display", "work_notes", "state", "close_code",
             "close_notes", "assigned_to", "comments"}
SN_STATES = {"1", "2", "3", "6", "7", "8"}
SN_CLOSE_CODES = {"Duplicate", "Known error", "No resolution provided", "Resolved by caller", "Resolved by change",
                  "Resolved by problem", "Resolved by request", "Solution provided", "Workaround provided",
                  "User error"}


@dataclass
class ServiceNow(Standin):
    """The incident table and its journal. Auth: basic (``users``) or OAuth bearer tokens from
    ``/oauth_token.do`` (``clients``, client-credentials grant)."""

    users: dict[str, str] = field(default_factory=lambda: {"wk.integration": "s3cret-pass"})
    clients: dict[str, str] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)  # access token -> user
    incidents: dict[str, dict[str, str]] = field(default_factory=dict)
    journal: list[dict[str, str]] = field(default_factory=list)
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    numbers: Iterator[int] = field(default_factory=lambda: itertools.count(10001))

    def stamp(self) -> str:
        return self.clock().strftime("%Y-%m-%d %H:%M:%S")

    def who(self, seen: Seen) -> str:
        header = seen.headers.get("authorization", "")
        if header.startswith("Bearer ") and header[7:] in self.tokens:
            return self.tokens[header[7:]]
        creds = _basic(seen)
        if creds is not None and self.users.get(creds[0]) == creds[1]:
            return creds[0]
        raise Reject(401, {"error": {"message": "User Not Authenticated", "detail": "Required to provide Auth "
                                     "information"}, "status": "failure"})

    def handle(self, seen: Seen) -> tuple[int, Any, dict[str, str]]:
        if seen.path == "/oauth_token.do" and seen.method == "POST":
            return self.oauth(seen)
        user = self.who(seen)
        if seen.headers.get("accept", "") != "application/json":
            raise Reject(406, {"error": {"message": "Accept must be application/json"}})
        m = re.fullmatch(r"/api/now/table/(incident|sys_journal_field)(?:/([0-9a-f]{32}))?", seen.path)
        if m is None:
            raise Reject(400, {"error": {"message": f"Invalid table or path {seen.path}"}})
        table, sys_id = m.groups()
        if table == "sys_journal_field":
            if seen.method != "GET" or sys_id:
                raise Reject(405, {"error": {"message": "method not allowed"}})
            return 200, {"result": self.query(self.journal, seen, "sys_created_on")}, {}
        if seen.method == "POST" and sys_id is None:
            return self.create(seen, user)
        if seen.method == "PATCH" and sys_id is not None:
            if sys_id not in self.incidents:
                raise Reject(404, {"error": {"message": "No Record found"}, "status": "failure"})
            return 200, {"result": self.update(sys_id, user, self.fields(seen))}, {}
        if seen.method == "GET" and sys_id is None:
            return 200, {"result": self.query(list(self.incidents.values()), seen, "sys_updated_on")}, {}
        if seen.method == "GET":
            if sys_id not in self.incidents:
                raise Reject(404, {"error": {"message": "No Record found"}})
            return 200, {"result": self.incidents[sys_id]}, {}
        raise Reject(405, {"error": {"message": "method not allowed"}})

    def oauth(self, seen: Seen) -> tuple[int, Any, dict[str, str]]:
        if not seen.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            raise Reject(400, {"error": "invalid_request"})
        form = {k: v[0] for k, v in parse_qs(seen.body.decode()).items()}
        if form.get("grant_type") != "client_credentials" or self.clients.get(form.get("client_id", "")) != \
                form.get("client_secret"):
            raise Reject(401, {"error": "access_denied", "error_description": "access_denied"})
        token = uuid.uuid4().hex
        self.tokens[token] = "wk.oauth"
        return 200, {"access_token": token, "token_type": "Bearer", "expires_in": 1799, "scope": "useraccount"}, {}

    def fields(self, seen: Seen) -> dict[str, str]:
        body = _json_body(seen)
        if not isinstance(body, dict):
            raise Reject(400, {"error": {"message": "Exception while reading request"}})
        unknown = set(body) - SN_FIELDS
        if unknown:
            raise Reject(400, {"error": {"message": f"stand-in: unexpected fields {sorted(unknown)}"}})
        if not all(isinstance(v, str) for v in body.values()):
            raise Reject(400, {"error": {"message": "stand-in: field values are strings"}})
        for key in ("impact", "urgency"):
            if key in body and body[key] not in ("1", "2", "3"):
                raise Reject(400, {"error": {"message": f"{key} must be 1, 2 or 3"}})
        if "state" in body and body["state"] not in SN_STATES:
            raise Reject(400, {"error": {"message": "invalid state"}})
        if len(body.get("short_description", "")) > 160 or len(body.get("correlation_id", "")) > 100:
            raise Reject(400, {"error": {"message": "value too long"}})
        return body

    def create(self, seen: Seen, user: str) -> tuple[int, Any, dict[str, str]]:
        body = self.fields(seen)
        if not body.get("short_description"):
            raise Reject(403, {"error": {"message": "Data Policy Exception: Short description is mandatory"}})
        number = next(self.numbers)
        sys_id = f"{number:032x}"  # stable across runs: the captured samples name it
        record = {"sys_id": sys_id, "number": f"INC{number:07d}", "state": "1", "impact": "3",
                  "urgency": "3", "assigned_to": "", "sys_mod_count": "-1", "sys_created_by": user,
                  "sys_created_on": self.stamp()}
        self.incidents[sys_id] = record
        self.update(sys_id, user, body)
        return 201, {"result": self.incidents[sys_id]}, {
            "Location": f"{self.url}/api/now/table/incident/{sys_id}"}

    def update(self, sys_id: str, user: str, body: dict[str, str]) -> dict[str, str]:
        record = self.incidents[sys_id]
        new_state = body.get("state", record["state"])
        if new_state in ("6", "7") and record["state"] not in ("6", "7"):
            code, notes = body.get("close_code", record.get("close_code")), body.get("close_notes",
                                                                                      record.get("close_notes"))
            if code not in SN_CLOSE_CODES or not notes:
                raise Reject(403, {"error": {"message": "Data Policy Exception: Resolution code and Resolution "
                                             "notes are mandatory"}})
        note = body.pop("work_notes", None)
        record.update(body)
        record.update(sys_mod_count=str(int(record["sys_mod_count"]) + 1), sys_updated_by=user,
                      sys_updated_on=self.stamp())
        if note:
            self.journal.append({"sys_id": uuid.uuid4().hex, "name": "incident", "element": "work_notes",
                                 "element_id": sys_id, "value": note, "sys_created_by": user,
                                 "sys_created_on": self.stamp()})
        return record

    def human(self, sys_id: str, user: str, **body: str) -> dict[str, str]:
        """A person changes the record in ServiceNow's own UI."""
        with self.lock:
            return dict(self.update(sys_id, user, dict(body)))

    def query(self, rows: list[dict[str, str]], seen: Seen, order: str) -> list[Any]:
        q = seen.query.get("sysparm_query", [""])[0]
        found = list(rows)
        for term in [t for t in q.split("^") if t]:
            if term.startswith("ORDERBY"):
                found.sort(key=lambda r, k=term[7:]: r.get(k, ""))
                continue
            m = re.fullmatch(r"(\w+)(STARTSWITH|>=|>|=|IN)(.*)", term)
            if m is None:
                raise Reject(400, {"error": {"message": f"stand-in: cannot read query term {term!r}"}})
            key, op, val = m.groups()
            if op == "STARTSWITH":
                found = [r for r in found if r.get(key, "").startswith(val)]
            elif op == ">=":
                found = [r for r in found if r.get(key, "") >= val]
            elif op == ">":
                found = [r for r in found if r.get(key, "") > val]
            elif op == "IN":
                found = [r for r in found if r.get(key, "") in val.split(",")]
            else:
                found = [r for r in found if r.get(key, "") == val]
        offset = int(seen.query.get("sysparm_offset", ["0"])[0])
        limit = int(seen.query.get("sysparm_limit", ["10000"])[0])
        found = found[offset: offset + limit]
        wanted = seen.query.get("sysparm_fields", [""])[0]
        names = wanted.split(",") if wanted else None
        display = seen.query.get("sysparm_display_value", ["false"])[0]
        out = []
        for r in found:
            picked = {k: v for k, v in r.items() if names is None or k in names}
            if display == "all":
                picked = {k: {"value": v, "display_value": self.display(k, v)} for k, v in picked.items()}
            out.append(picked)
        return out

    @staticmethod
    def display(key: str, value: str) -> str:
        if key == "state":
            return {"1": "New", "2": "In Progress", "3": "On Hold", "6": "Resolved", "7": "Closed",
                    "8": "Canceled"}.get(value, value)
        return value


# -- Jira ----------------------------------------------------------------------------------------
JIRA_PRIORITIES = {"Highest", "High", "Medium", "Low", "Lowest"}
STATUSES = {"10000": ("To Do", "new"), "3": ("In Progress", "indeterminate"), "10001": ("Done", "done")}
#: The workflow: transition id -> target status id (any status may take any of them).
TRANSITIONS = {"11": ("Start progress", "3"), "21": ("Back to do", "10000"), "31": ("Done", "10001")}


def jira_time(at: datetime) -> str:
    """Jira's REST time: ``2026-12-03T13:20:05.123+0000``."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}+0000"


def _jira_parse(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%f%z")


def check_adf(doc: Any) -> None:
    if not (isinstance(doc, dict) and doc.get("type") == "doc" and doc.get("version") == 1
            and isinstance(doc.get("content"), list)):
        raise Reject(400, {"errorMessages": [], "errors": {"description": "Operation value must be an Atlassian "
                                                           "Document (see the Atlassian Document Format)"}})
    for block in doc["content"]:
        if block.get("type") != "paragraph" or not all(
                n.get("type") == "text" and isinstance(n.get("text"), str) and n["text"] for n in block["content"]):
            raise Reject(400, {"errorMessages": ["stand-in: paragraphs of non-empty text nodes only"]})


@dataclass
class Jira(Standin):
    """Issues of one project with a three-status workflow. Auth: basic email + API token."""

    email: str = "wk@acme.example"
    api_token: str = "ATATT-token-abc123"
    project: str = "OPS"
    issues: dict[str, dict[str, Any]] = field(default_factory=dict)
    comments: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    ids: Iterator[int] = field(default_factory=lambda: itertools.count(10001))
    #: the account our API token belongs to: what we change is recorded as its doing
    account_id: str = "5b10ac8d82e05b22cc7d4ef5"
    #: changelog entries per issue key (``expand=changelog``), oldest first
    histories: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    #: search calls seen (the poller's JQL)
    searches: list[dict[str, list[str]]] = field(default_factory=list)

    def handle(self, seen: Seen) -> tuple[int, Any, dict[str, str]]:
        if _basic(seen) != (self.email, self.api_token):
            raise Reject(401, {"errorMessages": ["Client must be authenticated to access this resource."]})
        if seen.path == "/rest/api/3/issue" and seen.method == "POST":
            return self.create(_json_body(seen))
        if seen.path == "/rest/api/3/search/jql" and seen.method == "GET":
            return self.search(seen.query)
        m = re.fullmatch(r"/rest/api/3/issue/([A-Z]+-\d+)(/transitions|/comment)?", seen.path)
        if m is None or m.group(1) not in self.issues:
            raise Reject(404, {"errorMessages": ["Issue does not exist or you do not have permission to see it."]})
        issue = self.issues[m.group(1)]
        if m.group(2) == "/transitions" and seen.method == "GET":
            return 200, {"transitions": [self.transition(t) for t in TRANSITIONS]}, {}
        if m.group(2) == "/transitions" and seen.method == "POST":
            wanted = (_json_body(seen).get("transition") or {}).get("id")
            if wanted not in TRANSITIONS:
                raise Reject(400, {"errorMessages": ["Transition id is not valid for this issue."]})
            before = issue["fields"]["status"]["name"]
            self.set_status(issue, TRANSITIONS[wanted][1])
            self.record(issue["key"], self.account_id, "Watchkeeper", [{
                "field": "status", "fieldId": "status", "fromString": before,
                "toString": issue["fields"]["status"]["name"]}])
            return 204, None, {}
        if m.group(2) == "/comment" and seen.method == "POST":
            body = _json_body(seen)
            check_adf(body.get("body"))
            comment = {"id": str(next(self.ids)), "body": body["body"], "created": jira_time(self.now()),
                       "author": {"accountId": self.account_id, "displayName": "Watchkeeper"}}
            issue["fields"]["updated"] = comment["created"]
            self.comments.setdefault(issue["key"], []).append(comment)
            return 201, comment, {}
        if m.group(2) is None and seen.method == "PUT":
            fields = _json_body(seen).get("fields") or {}
            if set(fields) - {"priority"} or fields.get("priority", {}).get("name") not in JIRA_PRIORITIES:
                raise Reject(400, {"errorMessages": ["stand-in: only a known priority may change"]})
            issue["fields"]["priority"] = fields["priority"]
            return 204, None, {}
        if m.group(2) is None and seen.method == "GET":
            return 200, issue, {}
        raise Reject(405, {"errorMessages": ["method not allowed"]})

    def search(self, query: dict[str, list[str]]) -> tuple[int, Any, dict[str, str]]:
        """``GET /rest/api/3/search/jql``: by label (the notifier's lookup), or by label and
        ``updated >=`` oldest first (the poller), paged by ``nextPageToken``."""
        self.searches.append(query)
        jql = query.get("jql", [""])[0]
        m = re.fullmatch(r'labels = "([^"]+)"(?: AND updated >= "(\d{4}-\d{2}-\d{2} \d{2}:\d{2})" '
                         r"ORDER BY updated ASC)?", jql)
        if m is None:
            raise Reject(400, {"errorMessages": [f"stand-in: cannot read JQL {jql!r}"]})
        found = [i for i in self.issues.values() if m.group(1) in i["fields"]["labels"]]
        if m.group(2) is not None:
            since = datetime.strptime(m.group(2), "%Y-%m-%d %H:%M").replace(tzinfo=UTC)
            found = sorted((i for i in found if _jira_parse(i["fields"]["updated"]) >= since),
                           key=lambda i: _jira_parse(i["fields"]["updated"]))
        start = int(query.get("nextPageToken", ["0"])[0])
        size = int(query.get("maxResults", ["50"])[0])
        page = found[start:start + size]
        fields = set(query.get("fields", [""])[0].split(","))
        issues = []
        for i in page:
            shown: dict[str, Any] = {"id": i["id"], "key": i["key"],
                                     "fields": {k: v for k, v in i["fields"].items() if k in fields}}
            if "comment" in fields:
                got = self.comments.get(i["key"], [])
                shown["fields"]["comment"] = {"comments": got, "total": len(got), "maxResults": len(got)}
            if "changelog" in query.get("expand", [""])[0]:
                got = list(reversed(self.histories.get(i["key"], [])))  # the newest first, as Jira
                shown["changelog"] = {"histories": got, "total": len(got), "maxResults": len(got)}
            issues.append(shown)
        last = start + size >= len(found)
        return 200, {"issues": issues, "isLast": last, **({} if last else {"nextPageToken": str(start + size)})}, {}

    def record(self, key: str, account: str, name: str, items: list[dict[str, Any]]) -> dict[str, Any]:
        entry = {"id": str(next(self.ids)), "created": jira_time(self.now()),
                 "author": {"accountId": account, "displayName": name}, "items": items}
        self.histories.setdefault(key, []).append(entry)
        self.issues[key]["fields"]["updated"] = entry["created"]
        return entry

    def human(self, key: str, *, status: str | None = None, assignee: str | None = None,
              comment: str | None = None, account: str = "712020:beth", name: str = "Beth Anglin") -> None:
        """Someone changes the issue in Jira itself (no webhook is sent: only a poll sees it)."""
        issue = self.issues[key]
        if status is not None:
            before = issue["fields"]["status"]["name"]
            self.set_status(issue, status)
            self.record(key, account, name, [{"field": "status", "fieldId": "status", "fromString": before,
                                              "toString": issue["fields"]["status"]["name"]}])
        if assignee is not None:
            issue["fields"]["assignee"] = {"displayName": assignee}
            self.record(key, account, name, [{"field": "assignee", "fieldId": "assignee", "toString": assignee}])
        if comment is not None:
            made = {"id": str(next(self.ids)), "created": jira_time(self.now()),
                    "author": {"accountId": account, "displayName": name},
                    "body": {"type": "doc", "version": 1, "content": [
                        {"type": "paragraph", "content": [{"type": "text", "text": comment}]}]}}
            self.comments.setdefault(key, []).append(made)
            issue["fields"]["updated"] = made["created"]

    @staticmethod
    def transition(tid: str) -> dict[str, Any]:
        name, to = TRANSITIONS[tid]
        return {"id": tid, "name": name, "to": {"id": to, "name": STATUSES[to][0],
                                                "statusCategory": {"key": STATUSES[to][1]}}}

    @staticmethod
    def set_status(issue: dict[str, Any], status_id: str) -> None:
        issue["fields"]["status"] = {"id": status_id, "name": STATUSES[status_id][0],
                                     "statusCategory": {"key": STATUSES[status_id][1]}}

    def create(self, body: Any) -> tuple[int, Any, dict[str, str]]:
        fields = body.get("fields") if isinstance(body, dict) else None
        errors = {}
        if not isinstance(fields, dict):
            raise Reject(400, {"errorMessages": ["fields are required"]})
        if (fields.get("project") or {}).get("key") != self.project:
            errors["project"] = "valid project is required"
        if not (fields.get("issuetype") or {}).get("name"):
            errors["issuetype"] = "Specify an issue type"
        summary = fields.get("summary")
        if not isinstance(summary, str) or not summary or len(summary) > 255 or "\n" in summary:
            errors["summary"] = "Summary must be one line of less than 255 characters."
        if (fields.get("priority") or {}).get("name") not in JIRA_PRIORITIES:
            errors["priority"] = "Specify the Priority (name) in the string format"
        if any(" " in label for label in fields.get("labels") or []):
            errors["labels"] = "The label must not contain spaces."
        if errors:
            raise Reject(400, {"errorMessages": [], "errors": errors})
        check_adf(fields.get("description"))
        issue_id = str(next(self.ids))
        key = f"{self.project}-{len(self.issues) + 1}"
        issue = {"id": issue_id, "key": key, "fields": {**fields, "assignee": None, "updated": jira_time(self.now())}}
        self.set_status(issue, "10000")
        self.issues[key] = issue
        return 201, {"id": issue_id, "key": key, "self": f"{self.url}/rest/api/3/issue/{issue_id}"}, {}


# -- Teams ---------------------------------------------------------------------------------------
@dataclass
class Teams(Standin):
    """A Workflows webhook: the URL's ``sig`` query parameter is its only credential."""

    sig: str = "Zm9vYmFyLXNpZ25hdHVyZQ"
    cards: list[dict[str, Any]] = field(default_factory=list)

    def handle(self, seen: Seen) -> tuple[int, Any, dict[str, str]]:
        if seen.method != "POST" or not seen.path.startswith("/workflows/"):
            raise Reject(404, {"error": {"code": "NotFound"}})
        if seen.query.get("sig", [""])[0] != self.sig:
            raise Reject(401, {"error": {"code": "DirectApiAuthorizationRequired",
                                         "message": "The request must be authenticated"}})
        if len(seen.body) > 28 * 1024:
            raise Reject(413, {"error": {"code": "MessageSizeTooBig", "message": "over 28 KB"}})
        body = _json_body(seen)
        attachments = body.get("attachments") if isinstance(body, dict) else None
        if body.get("type") != "message" or not isinstance(attachments, list) or len(attachments) != 1:
            raise Reject(400, {"error": {"code": "InvalidRequestContent"}})
        attachment = attachments[0]
        card = attachment.get("content") or {}
        if attachment.get("contentType") != "application/vnd.microsoft.card.adaptive" \
                or card.get("type") != "AdaptiveCard" or not re.fullmatch(r"1\.[0-5]", str(card.get("version"))):
            raise Reject(400, {"error": {"code": "InvalidRequestContent", "message": "not an Adaptive Card"}})
        for action in card.get("actions") or []:
            if action.get("type") != "Action.OpenUrl" or not str(action.get("url", "")).startswith("http"):
                raise Reject(400, {"error": {"message": "stand-in: only Action.OpenUrl with an http(s) url"}})
        self.cards.append(card)
        return 202, None, {}
