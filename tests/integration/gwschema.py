"""Validation of received frames against the official protocol.schema.json.

The schema comes from the npm package @openclaw/gateway-protocol (version
SCHEMA_VERSION). tests/integration/fetch-schema.sh puts it in the cache dir
(contrib/test.sh runs it before the build); locate() finds it or fetches it
once with `npm pack` when missing.
"""

import json
import os
import subprocess
import tarfile
import tempfile

import jsonschema
from jsonschema import Draft7Validator

SCHEMA_PKG = "@openclaw/gateway-protocol"
SCHEMA_VERSION = "2026.9.1"


def cache_dir():
    d = os.environ.get("CLAWGATE_SCHEMA_CACHE")
    if d:
        return d
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(
        os.path.expanduser("~"), ".cache")
    return os.path.join(base, "clawgate")


def schema_path():
    return os.environ.get("CLAWGATE_SCHEMA") or os.path.join(
        cache_dir(), "gateway-protocol-%s" % SCHEMA_VERSION,
        "protocol.schema.json")


def fetch(dest):
    """npm pack the package and extract package/protocol.schema.json."""
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["npm", "pack", "--silent",
                        "%s@%s" % (SCHEMA_PKG, SCHEMA_VERSION)],
                       cwd=tmp, check=True, timeout=120,
                       stdout=subprocess.DEVNULL)
        tgz = [f for f in os.listdir(tmp) if f.endswith(".tgz")][0]
        with tarfile.open(os.path.join(tmp, tgz)) as tf:
            member = tf.getmember("package/protocol.schema.json")
            data = tf.extractfile(member).read()
        json.loads(data)
        with open(dest + ".tmp", "wb") as f:
            f.write(data)
        os.replace(dest + ".tmp", dest)


def locate():
    p = schema_path()
    if not os.path.exists(p):
        fetch(p)
    return p


# Result definitions for methods whose result the schema describes.
RESULT_DEFS = {
    "logs.tail": "#/definitions/LogsTailResult",
    "health": "#/definitions/Snapshot/properties/health",
    "channels.status": "#/definitions/ChannelsStatusResult",
    "channels.pairing.list": "#/definitions/ChannelsPairingListResult",
    "channels.pairing.approve": "#/definitions/ChannelsPairingApproveResult",
    "channels.pairing.dismiss": "#/definitions/ChannelsPairingDismissResult",
    "agent.identity.get": "#/definitions/AgentIdentityResult",
    "system.info": "#/definitions/SystemInfoResult",
    "sessions.companion.state": "#/definitions/SessionsCompanionStateResult",
    "sessions.observer.visibility":
        "#/definitions/SessionsObserverVisibilityResult",
    "sessions.branches.list": "#/definitions/SessionsBranchesListResult",
    "talk.catalog": "#/definitions/TalkCatalogResult",
    "tools.catalog": "#/definitions/ToolsCatalogResult",
    "tasks.list": "#/definitions/TasksListResult",
    "progressCard.get": "#/definitions/ProgressCardGetResult",
    "environments.list": "#/definitions/EnvironmentsListResult",
    "question.list": "#/definitions/QuestionListResult",
    "update.status": "#/definitions/UpdateStatusResult",
    "exec.approvals.get": "#/definitions/ExecApprovalsSnapshot",
    "node.event": "#/definitions/NodeEventResult",
    "cron.add": "#/definitions/CronAddResult",
    "cron.get": "#/definitions/CronJob",
    "cron.update": "#/definitions/CronJob",
    "cron.scratch.get": "#/definitions/CronScratchGetResult",
    "cron.scratch.set": "#/definitions/CronScratchSetResult",
}
# Payload definitions for events.
EVENT_DEFS = {
    "tick": "#/definitions/TickEvent",
    "shutdown": "#/definitions/ShutdownEvent",
    "health": "#/definitions/Snapshot/properties/health",
    "agent": "#/definitions/AgentEvent",
    "chat": "#/definitions/ChatEvent",
    "device.pair.requested": "#/definitions/DevicePairRequestedEvent",
    "device.pair.resolved": "#/definitions/DevicePairResolvedEvent",
    "node.invoke.request": "#/definitions/NodeInvokeRequestEvent",
}
# Error details with a schema of their own, keyed by details.code.
DETAIL_DEFS = {
    "MISSING_SCOPE": "#/definitions/MissingScopeErrorDetails",
    "CRON_JOB_NOT_FOUND": "#/definitions/CronJobNotFoundErrorDetails",
}


class FrameValidator:
    """Callable(frame, pending) raising AssertionError on a schema error.

    lenient=True ignores additionalProperties errors: the real gateway
    (2026.9.6) is newer than the published schema (2026.9.1) and sends a few
    extra fields (hello-ok controlUiLinkReaders, auth.method,
    health.eventLoop.cpuBreakdown). Our daemon is held to the strict schema.
    """

    def __init__(self, path, lenient=False):
        with open(path) as f:
            self.schema = json.load(f)
        self.lenient = lenient
        self.resolver = jsonschema.RefResolver.from_schema(self.schema)
        self._cache = {}
        self.methods = self.schema.get("methods", {})
        self.definitions = self.schema.get("definitions", {})
        self.presence_list = {
            "type": "array",
            "items": {"$ref": "#/definitions/PresenceEntry"}}
        self.presence_event = {
            "type": "object", "required": ["presence"],
            "properties": {"presence": self.presence_list},
            "additionalProperties": False}
        self.challenge = {
            "type": "object", "required": ["nonce", "ts"],
            "properties": {"nonce": {"type": "string", "minLength": 1},
                           "ts": {"type": "integer", "minimum": 0}}}

    def validator(self, ref_or_schema):
        key = json.dumps(ref_or_schema, sort_keys=True) \
            if isinstance(ref_or_schema, dict) else ref_or_schema
        v = self._cache.get(key)
        if v is None:
            sch = ref_or_schema if isinstance(ref_or_schema, dict) \
                else {"$ref": ref_or_schema}
            v = Draft7Validator(sch, resolver=self.resolver)
            self._cache[key] = v
        return v

    def check(self, what, ref, value):
        errs = list(self.validator(ref).iter_errors(value))
        if self.lenient:
            errs = [e for e in errs if e.validator != "additionalProperties"]
        if errs:
            e = sorted(errs, key=lambda x: list(x.absolute_path))[0]
            raise AssertionError(
                "schema violation in %s at /%s: %s\n%s" % (
                    what, "/".join(str(p) for p in e.absolute_path),
                    e.message, json.dumps(value)[:2000]))

    def __call__(self, frame, pending=None):
        self.check("frame", "#/definitions/GatewayFrame", frame)
        t = frame.get("type")
        if t == "event":
            name = frame["event"]
            payload = frame.get("payload")
            if name == "connect.challenge":
                self.check("connect.challenge", self.challenge, payload)
            elif name == "presence":
                self.check("presence event", self.presence_event, payload)
            elif name in EVENT_DEFS:
                self.check("%s event" % name, EVENT_DEFS[name], payload)
        elif t == "res":
            method = (pending or {}).pop(frame["id"], None)
            if frame["ok"]:
                payload = frame.get("payload")
                if isinstance(payload, dict) and \
                        payload.get("type") == "hello-ok":
                    self.check("hello-ok", "#/definitions/HelloOk", payload)
                elif method == "system-presence":
                    self.check("system-presence result", self.presence_list,
                               payload)
                elif method in RESULT_DEFS:
                    self.check("%s result" % method, RESULT_DEFS[method],
                               payload)
            else:
                details = frame["error"].get("details")
                if isinstance(details, dict) and \
                        details.get("code") in DETAIL_DEFS:
                    self.check("error details", DETAIL_DEFS[details["code"]],
                               details)
