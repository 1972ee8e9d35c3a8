/* The option table: one row per config key (type, default, check, reload
 * class, secret flag, help). Validation, defaults and (later) config.schema,
 * redaction and the reload plan are all driven from it. */
#include <arpa/inet.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "core/common.h"

#define CONFIG_OPTIONS_MAX_DEPTH 160

static int config_options_check_bind(const struct config_option *o,
				     const json_t *v, char *msg, size_t len);
static int config_options_check_ipv4(const struct config_option *o,
				     const json_t *v, char *msg, size_t len);
static int config_options_check_tls(const struct config_option *o,
				    const json_t *v, char *msg, size_t len);
static int config_options_check_model(const struct config_option *o,
				      const json_t *v, char *msg, size_t len);
static int config_options_check_path(const struct config_option *o,
				     const json_t *v, char *msg, size_t len);
static int config_options_check_headers(const struct config_option *o,
					const json_t *v, char *msg,
					size_t len);

static const char *const gateway_modes[] = { "local", "remote", NULL };
static const char *const bind_modes[] = { "auto", "loopback", "lan",
					  "tailnet", "custom", NULL };
static const char *const auth_modes[] = { "none", "token", "password",
					  "trusted-proxy", NULL };
static const char *const reload_modes[] = { "off", "hot", "restart",
					    "hybrid", NULL };
static const char *const tailscale_modes[] = { "off", "serve", "funnel",
					       NULL };
static const char *const remote_transports[] = { "ssh", "direct", NULL };
static const char *const host_key_policies[] = { "strict", "openssh", NULL };
static const char *const embed_sandboxes[] = { "strict", "scripts",
					       "trusted", NULL };
static const char *const log_levels[] = { "silent", "fatal", "error", "warn",
					  "info", "debug", "trace", NULL };
static const char *const console_styles[] = { "pretty", "compact", "json",
					      NULL };
static const char *const models_modes[] = { "merge", "replace", NULL };
static const char *const provider_apis[] = {
	"openai-completions", "openai-responses",
	"openai-chatgpt-responses", "anthropic-messages",
	"google-generative-ai", "google-vertex", "github-copilot",
	"bedrock-converse-stream", "ollama", "azure-openai-responses", NULL
};

#define OPT(k, t, rl, h, ...)                                              \
	{ .key = k, .type = CFG_##t, .reload = CONFIG_RELOAD_##rl,         \
	  .help = h, __VA_ARGS__ }

static const struct config_option config_options[] = {
	/* root */
	OPT("$schema", STRING, NONE, "JSON Schema URL (for editors)"),
	OPT("meta", ANY, NONE,
	    "Metadata stamped by config writers (lastTouchedVersion, ...)"),

	/* gateway */
	OPT("gateway", OBJECT, RESTART, "Gateway server settings"),
	OPT("gateway.mode", ENUM, RESTART,
	    "local runs the gateway here; remote points clients elsewhere",
	    .values = gateway_modes),
	OPT("gateway.port", INT, RESTART, "TCP port for WS + HTTP",
	    .def = "18789", .min = 1, .max = 65535),
	OPT("gateway.bind", ENUM, RESTART,
	    "Listen address mode (loopback = 127.0.0.1 and ::1)",
	    .def = "\"loopback\"", .values = bind_modes,
	    .check = config_options_check_bind),
	OPT("gateway.customBindHost", STRING, RESTART,
	    "IPv4 address to listen on when bind=custom",
	    .check = config_options_check_ipv4),
	OPT("gateway.publicOrigin", STRING, HOT,
	    "External HTTPS origin the gateway is reached at"),
	OPT("gateway.auth", OBJECT, RESTART, "Client authentication"),
	OPT("gateway.auth.mode", ENUM, RESTART,
	    "none, token, password or trusted-proxy (default: password when "
	    "a password is set, else token)", .values = auth_modes),
	OPT("gateway.auth.token", SECRET, RESTART,
	    "Shared token (string or SecretRef)", .flags = CFG_F_SECRET),
	OPT("gateway.auth.password", SECRET, RESTART,
	    "Shared password (string or SecretRef)", .flags = CFG_F_SECRET),
	OPT("gateway.auth.allowTailscale", BOOL, RESTART,
	    "Accept Tailscale identity headers from tailscale serve"),
	OPT("gateway.auth.identityScopes", ANY, RESTART,
	    "Scopes granted per identity (email: [scopes])"),
	OPT("gateway.auth.rateLimit", OBJECT, HOT,
	    "Failed-auth rate limiting per client IP"),
	OPT("gateway.auth.rateLimit.maxAttempts", INT, HOT,
	    "Failed attempts allowed per window", .def = "10", .min = 1,
	    .max = 1000000),
	OPT("gateway.auth.rateLimit.windowMs", INT, HOT,
	    "Counting window in milliseconds", .def = "60000", .min = 1,
	    .max = 86400000),
	OPT("gateway.auth.rateLimit.lockoutMs", INT, HOT,
	    "Lockout after the limit is hit, in milliseconds",
	    .def = "300000", .min = 0, .max = 604800000),
	OPT("gateway.auth.rateLimit.exemptLoopback", BOOL, HOT,
	    "Do not rate-limit loopback clients", .def = "true"),
	OPT("gateway.auth.trustedProxy", OBJECT, RESTART,
	    "Identity from a trusted reverse proxy (mode trusted-proxy)"),
	OPT("gateway.auth.trustedProxy.userHeader", STRING, RESTART,
	    "Header carrying the authenticated user (required)"),
	OPT("gateway.auth.trustedProxy.requiredHeaders", STRINGS, RESTART,
	    "Headers that must be present on proxied requests"),
	OPT("gateway.auth.trustedProxy.allowUsers", STRINGS, RESTART,
	    "Users allowed (empty = any authenticated user)"),
	OPT("gateway.auth.trustedProxy.allowLoopback", BOOL, RESTART,
	    "Accept the proxy headers from loopback peers", .def = "false"),
	OPT("gateway.auth.trustedProxy.deviceAutoApprove", ANY, RESTART,
	    "Auto-approve devices of proxied users ({enabled, scopes})"),
	OPT("gateway.trustedProxies", STRINGS, RESTART,
	    "Proxy IPs whose X-Forwarded-For is trusted"),
	OPT("gateway.allowRealIpFallback", BOOL, RESTART,
	    "Accept X-Real-IP when X-Forwarded-For is absent",
	    .def = "false"),

	OPT("gateway.controlUi", OBJECT, RESTART, "The browser Control UI"),
	OPT("gateway.controlUi.enabled", BOOL, HOT, "Serve the Control UI",
	    .def = "true"),
	OPT("gateway.controlUi.basePath", STRING, RESTART,
	    "URL prefix of the Control UI (e.g. /openclaw)",
	    .check = config_options_check_path),
	OPT("gateway.controlUi.root", STRING, RESTART,
	    "Directory with the Control UI files"),
	OPT("gateway.controlUi.allowedOrigins", STRINGS, HOT,
	    "Browser origins allowed to connect"),
	OPT("gateway.controlUi.allowInsecureAuth", BOOL, RESTART,
	    "Allow token auth over plain HTTP from non-local origins",
	    .def = "false"),
	OPT("gateway.controlUi.dangerouslyDisableDeviceAuth", BOOL, RESTART,
	    "Skip device identity for the Control UI (dangerous)",
	    .def = "false"),
	OPT("gateway.controlUi.dangerouslyAllowHostHeaderOriginFallback", BOOL,
	    HOT, "Accept the Host header as origin (dangerous)",
	    .def = "false"),
	OPT("gateway.controlUi.environment", ANY, HOT, "UI environment label"),
	OPT("gateway.controlUi.communityInvite", ANY, HOT,
	    "Community invite link"),
	OPT("gateway.controlUi.github", ANY, HOT, "GitHub integration"),
	OPT("gateway.controlUi.toolTitles", BOOL, HOT, "Show tool titles",
	    .def = "false"),
	OPT("gateway.controlUi.sessionObserver", ANY, HOT,
	    "Session observer settings"),
	OPT("gateway.controlUi.embedSandbox", ENUM, HOT,
	    "Sandbox for embedded content", .values = embed_sandboxes),
	OPT("gateway.controlUi.allowExternalEmbedUrls", BOOL, HOT,
	    "Allow external embed URLs", .def = "false"),
	OPT("gateway.controlUi.automaticallyFetchFavicons", BOOL, HOT,
	    "Fetch favicons of linked sites", .def = "true"),

	OPT("gateway.tls", OBJECT, RESTART,
	    "TLS on the gateway port (not supported: terminate in front)"),
	OPT("gateway.tls.enabled", BOOL, RESTART,
	    "Must be false: TLS is terminated in front of the gateway",
	    .def = "false", .check = config_options_check_tls),
	OPT("gateway.tls.autoGenerate", BOOL, RESTART,
	    "Generate a self-signed certificate", .def = "false"),
	OPT("gateway.tls.certPath", STRING, RESTART, "Certificate file"),
	OPT("gateway.tls.keyPath", STRING, RESTART, "Private key file"),
	OPT("gateway.tls.caPath", STRING, RESTART, "CA bundle file"),

	OPT("gateway.http", OBJECT, RESTART, "HTTP API settings",
	    .flags = CFG_F_OPEN),
	OPT("gateway.http.endpoints", OBJECT, HOT,
	    "OpenAI-compatible endpoints", .flags = CFG_F_OPEN),
	OPT("gateway.http.endpoints.chatCompletions", OBJECT, HOT,
	    "POST /v1/chat/completions", .flags = CFG_F_OPEN),
	OPT("gateway.http.endpoints.chatCompletions.enabled", BOOL, HOT,
	    "Serve /v1/chat/completions", .def = "true"),
	OPT("gateway.http.endpoints.responses", OBJECT, HOT,
	    "POST /v1/responses", .flags = CFG_F_OPEN),
	OPT("gateway.http.endpoints.responses.enabled", BOOL, HOT,
	    "Serve /v1/responses", .def = "true"),
	OPT("gateway.http.endpoints.embeddings", OBJECT, HOT,
	    "POST /v1/embeddings", .flags = CFG_F_OPEN),
	OPT("gateway.http.endpoints.embeddings.enabled", BOOL, HOT,
	    "Serve /v1/embeddings", .def = "true"),
	OPT("gateway.http.endpoints.models", OBJECT, HOT,
	    "GET /v1/models", .flags = CFG_F_OPEN),
	OPT("gateway.http.endpoints.models.enabled", BOOL, HOT,
	    "Serve /v1/models", .def = "true"),
	OPT("gateway.http.securityHeaders", ANY, HOT,
	    "Extra security headers (strictTransportSecurity)"),
	OPT("gateway.http.cors", OBJECT, HOT,
	    "CORS for the HTTP API (off unless allowedOrigins is set)"),
	OPT("gateway.http.cors.allowedOrigins", STRINGS, HOT,
	    "Origins allowed to call the API from a browser (\"*\" = any)"),
	OPT("gateway.http.cors.maxAgeSeconds", INT, HOT,
	    "Preflight cache lifetime", .def = "600", .min = 0,
	    .max = 86400),
	OPT("gateway.http.maxConnections", INT, RESTART,
	    "HTTP connections held at once (streams included); more are "
	    "answered 503. Lowered to fit the open-file limit",
	    .def = "16384", .min = 1, .max = 65536),
	OPT("gateway.http.models", OBJECT, HOT, "GET /v1/models listing"),
	OPT("gateway.http.models.includeProviderModels", BOOL, HOT,
	    "Also list provider models (usable as `model`)",
	    .def = "false"),

	OPT("gateway.reload", OBJECT, NONE, "Config hot reload"),
	OPT("gateway.reload.mode", ENUM, NONE,
	    "off, hot, restart or hybrid", .def = "\"hybrid\"",
	    .values = reload_modes),
	OPT("gateway.reload.debounceMs", INT, NONE,
	    "Debounce of file change events", .def = "300", .min = 0,
	    .max = 60000),

	OPT("gateway.remote", OBJECT, NONE,
	    "Remote gateway used by clients in remote mode",
	    .flags = CFG_F_OPEN),
	OPT("gateway.remote.url", STRING, NONE, "ws:// URL of the gateway"),
	OPT("gateway.remote.transport", ENUM, NONE, "ssh or direct",
	    .values = remote_transports),
	OPT("gateway.remote.token", SECRET, NONE, "Client token",
	    .flags = CFG_F_SECRET),
	OPT("gateway.remote.password", SECRET, NONE, "Client password",
	    .flags = CFG_F_SECRET),
	OPT("gateway.remote.sshTarget", STRING, NONE, "user@host for ssh"),
	OPT("gateway.remote.sshIdentity", STRING, NONE, "ssh identity file"),
	OPT("gateway.remote.remotePort", INT, NONE, "Gateway port remotely",
	    .min = 1, .max = 65535),
	OPT("gateway.remote.tlsFingerprint", STRING, NONE,
	    "Pinned TLS fingerprint"),
	OPT("gateway.remote.sshHostKeyPolicy", ENUM, NONE,
	    "strict or openssh", .values = host_key_policies),

	OPT("gateway.tools", OBJECT, HOT, "/tools/invoke overrides"),
	OPT("gateway.tools.allow", STRINGS, HOT, "Tools allowed over HTTP"),
	OPT("gateway.tools.deny", STRINGS, HOT, "Tools denied over HTTP"),

	OPT("gateway.nodes", OBJECT, RESTART, "Node devices",
	    .flags = CFG_F_OPEN),
	OPT("gateway.nodes.pairing", OBJECT, HOT, "Device pairing",
	    .flags = CFG_F_OPEN),
	OPT("gateway.nodes.pairing.autoApproveLocal", BOOL, HOT,
	    "Auto-approve pairing from loopback", .def = "true"),
	OPT("gateway.nodes.pairing.autoApproveCidrs", STRINGS, HOT,
	    "Networks whose pairing requests are auto-approved"),
	OPT("gateway.nodes.pairing.sshVerify", BOOL, HOT,
	    "Verify pairing over ssh", .def = "true"),
	OPT("gateway.nodes.commands", ANY, HOT,
	    "Node commands allow/deny lists"),
	OPT("gateway.nodes.browser", ANY, HOT, "Browser node settings"),
	OPT("gateway.nodes.pluginTools", ANY, HOT, "Plugin tools on nodes"),
	OPT("gateway.nodes.allowSkills", ANY, HOT, "Skills on nodes"),

	OPT("gateway.tailscale", OBJECT, RESTART, "Tailscale serve/funnel"),
	OPT("gateway.tailscale.mode", ENUM, RESTART, "off, serve or funnel",
	    .def = "\"off\"", .values = tailscale_modes),
	OPT("gateway.tailscale.resetOnExit", BOOL, RESTART,
	    "Undo serve/funnel on exit"),
	OPT("gateway.tailscale.preserveFunnel", BOOL, RESTART,
	    "Deprecated"),
	OPT("gateway.push", ANY, HOT, "Push relay (apns)"),
	OPT("gateway.terminal", ANY, HOT, "Operator terminal"),
	OPT("gateway.cliAgents", ANY, HOT, "CLI agents"),
	OPT("gateway.channelHealthCheckMinutes", INT, RESTART,
	    "Channel health check interval", .min = 0, .max = 1440),
	OPT("gateway.channelStaleEventThresholdMinutes", INT, RESTART,
	    "Channel stale-event threshold", .min = 0, .max = 10080),
	OPT("gateway.channelMaxRestartsPerHour", INT, RESTART,
	    "Channel restart budget", .min = 0, .max = 1000),

	/* logging, update */
	OPT("logging", OBJECT, NONE, "Logging", .flags = CFG_F_OPEN),
	OPT("logging.file", STRING, NONE,
	    "Log file (*.log) or directory for daily files"),
	OPT("logging.level", ENUM, NONE, "File log level",
	    .values = log_levels),
	OPT("logging.consoleLevel", ENUM, NONE, "Console log level",
	    .values = log_levels),
	OPT("logging.consoleStyle", ENUM, NONE, "Console log style",
	    .values = console_styles),
	OPT("update", OBJECT, NONE, "Update checks", .flags = CFG_F_OPEN),
	OPT("update.checkOnStart", BOOL, NONE, "Check for updates at start",
	    .def = "true"),

	/* agents and models: known keys checked, the rest accepted */
	OPT("agents", OBJECT, NONE, "Agents", .flags = CFG_F_OPEN),
	OPT("agents.defaults", OBJECT, HOT, "Defaults for every agent",
	    .flags = CFG_F_OPEN),
	OPT("agents.defaults.model", ANY, HOT,
	    "\"provider/model\" or {primary, fallbacks}",
	    .check = config_options_check_model),
	OPT("agents.defaults.workspace", STRING, HOT, "Workspace directory"),
	OPT("agents.defaults.maxConcurrent", INT, HOT,
	    "Agent runs in flight at most across sessions (each session "
	    "is still serialized; the rest wait in order); default "
	    "max(8, 4 x CPUs)", .min = 1, .max = 1000000),
	OPT("agents.entries", OBJECT, HOT, "Agents by id"),
	OPT("agents.entries.*", OBJECT, HOT, "One agent",
	    .flags = CFG_F_OPEN),
	OPT("agents.entries.*.name", STRING, HOT, "Display name"),
	OPT("agents.entries.*.workspace", STRING, HOT, "Workspace directory"),
	OPT("agents.entries.*.model", ANY, HOT,
	    "\"provider/model\" or {primary, fallbacks}",
	    .check = config_options_check_model),
	OPT("agents.list", ANY, NONE, "Legacy agent list [{id, ...}]"),
	OPT("models", OBJECT, HOT, "Model providers", .flags = CFG_F_OPEN),
	OPT("models.mode", ENUM, HOT, "merge with or replace built-ins",
	    .def = "\"merge\"", .values = models_modes),
	OPT("models.providers", OBJECT, HOT, "Providers by id"),
	OPT("models.providers.*", OBJECT, HOT, "One provider",
	    .flags = CFG_F_OPEN),
	OPT("models.providers.*.baseUrl", STRING, HOT,
	    "Base URL including /v1"),
	OPT("models.providers.*.apiKey", SECRET, HOT,
	    "API key (string, ${ENV} or SecretRef)", .flags = CFG_F_SECRET),
	OPT("models.providers.*.api", ENUM, HOT, "Wire API of the provider",
	    .values = provider_apis),
	OPT("models.providers.*.models", ANY, HOT, "Models [{id, ...}]"),
	OPT("models.providers.*.headers", OBJECT, HOT,
	    "Extra HTTP headers sent upstream {name: value}",
	    .flags = CFG_F_OPEN, .check = config_options_check_headers),
	OPT("models.providers.*.headers.*", SECRET, HOT,
	    "One upstream header value (redacted: it may carry a key)",
	    .flags = CFG_F_SECRET),
	OPT("models.providers.*.timeoutSeconds", INT, HOT,
	    "Upstream request timeout in seconds (default 300)",
	    .min = 1, .max = 86400),
	OPT("models.connectionPool", OBJECT, HOT,
	    "Upstream connections kept open and reused (keep-alive)"),
	OPT("models.connectionPool.maxIdle", INT, HOT,
	    "Idle upstream connections kept for reuse", .def = "64",
	    .min = 1, .max = 100000),
	OPT("models.connectionPool.maxPerHost", INT, HOT,
	    "Connections per upstream host (0 = no limit; more requests "
	    "wait for a free one)", .def = "0", .min = 0, .max = 100000),
	OPT("models.connectionPool.idleSeconds", INT, HOT,
	    "How long an idle upstream connection may be reused",
	    .def = "60", .min = 1, .max = 86400),

	/* subtrees not implemented yet: accepted as is */
	OPT("hooks", OBJECT, HOT, "Webhooks", .flags = CFG_F_OPEN),
	OPT("hooks.enabled", BOOL, HOT, "Serve <hooks.path>/wake and /agent",
	    .def = "false"),
	OPT("hooks.token", SECRET, HOT,
	    "Hook token (required; must differ from the gateway token)",
	    .flags = CFG_F_SECRET),
	OPT("hooks.path", STRING, HOT, "Base path of the hooks",
	    .def = "\"/hooks\""),
	OPT("hooks.maxBodyBytes", INT, HOT, "Body limit of a hook request",
	    .def = "262144", .min = 1, .max = 20971520),
	OPT("hooks.defaultSessionKey", STRING, HOT,
	    "Session of /agent runs without sessionKey"),
	OPT("hooks.allowRequestSessionKey", BOOL, HOT,
	    "Accept sessionKey from the request", .def = "false"),
	OPT("hooks.allowedSessionKeyPrefixes", STRINGS, HOT,
	    "Prefixes a requested sessionKey must have"),
	OPT("hooks.allowedAgentIds", STRINGS, HOT,
	    "Agents hooks may target (\"*\" = any)"),
	OPT("env", ANY, RESTART, "Environment (vars, shellEnv)"),
	OPT("secrets", OBJECT, HOT, "SecretRef providers and defaults",
	    .flags = CFG_F_OPEN),
	OPT("secrets.providers", ANY, HOT,
	    "Named providers: {source: env|file|exec|store, ...} (checked "
	    "at activation)"),
	OPT("secrets.defaults", OBJECT, HOT, "Default provider alias per "
	    "source"),
	OPT("secrets.defaults.env", STRING, HOT, "Default env provider"),
	OPT("secrets.defaults.file", STRING, HOT, "Default file provider"),
	OPT("secrets.defaults.exec", STRING, HOT, "Default exec provider"),
	OPT("secrets.defaults.store", STRING, HOT, "Default store provider"),
	OPT("session", ANY, NONE, "Sessions"),
	OPT("tools", ANY, HOT, "Agent tools"),
	OPT("channels", ANY, HOT, "Messaging channels"),
	OPT("plugins", OBJECT, HOT, "Plugins", .flags = CFG_F_OPEN),
	OPT("plugins.load", ANY, RESTART, "Plugin load paths"),
	OPT("plugins.installs", ANY, RESTART, "Installed plugins"),
	OPT("skills", ANY, NONE, "Skills"),
	/* automations (issue 12, doc/cron.md): every key hot */
	OPT("cron", OBJECT, HOT, "Automations (scheduled agent turns)"),
	OPT("cron.enabled", BOOL, HOT,
	    "Run due jobs (false: only manual runs; env OPENCLAW_SKIP_CRON=1 "
	    "too)", .def = "true"),
	OPT("cron.skipMissedJobs", BOOL, HOT,
	    "At start-up, move overdue recurring jobs to their next slot "
	    "instead of running them once", .def = "false"),
	OPT("cron.maxConcurrentRuns", INT, HOT,
	    "clawgate: runs at once; more wait in a queue", .def = "1",
	    .min = 1, .max = 64),
	OPT("cron.runTimeoutSeconds", INT, HOT,
	    "clawgate: default bound of one run (payload.timeoutSeconds "
	    "overrides; 0 = none)", .def = "600", .min = 0, .max = 604800),
	OPT("cron.allowCommandPayload", BOOL, HOT,
	    "clawgate: accept command payloads (programs run on the gateway "
	    "host, never through a shell)", .def = "false"),
	OPT("cron.triggers", ANY, HOT, "Conditional triggers (not supported)"),
	OPT("cron.webhookToken", SECRET, HOT,
	    "Bearer token of webhook delivery (stored; clawgate does not "
	    "deliver)", .flags = CFG_F_SECRET),
	OPT("cron.webhookSsrfPolicy", ANY, HOT, "Webhook SSRF policy"),
	OPT("cron.sessionRetention", ANY, HOT,
	    "How long isolated run sessions are kept"),
	OPT("cron.failureAlert", ANY, HOT, "Failure alerts (doc/cron.md)"),
	OPT("identity", ANY, NONE, "Assistant identity"),
	OPT("wizard", ANY, NONE, "Onboarding wizard state"),
	OPT("bindings", ANY, NONE, "Channel to agent routing"),
	OPT("audio", ANY, NONE, "Audio"),
	OPT("agent", ANY, NONE, "Legacy single-agent settings"),
	OPT("routing", ANY, NONE, "Legacy routing"),
	OPT("messages", ANY, NONE, "Message handling"),
	OPT("talk", ANY, NONE, "Talk mode"),
	OPT("tui", ANY, NONE, "Terminal UI"),
	OPT("ui", ANY, NONE, "UI appearance"),
	OPT("auth", ANY, HOT, "Model auth profiles"),
	OPT("approvals", ANY, HOT, "Exec approvals"),
	OPT("broadcast", ANY, HOT, "Broadcast groups"),
	OPT("mcp", ANY, HOT, "MCP servers"),
	OPT("commands", ANY, RESTART, "Chat commands"),
	OPT("accessGroups", ANY, HOT,
	    "Reusable sender groups for channel allowlists (accessGroup:<name>)"),
	OPT("discovery", ANY, RESTART, "mDNS / wide-area discovery"),
	OPT("canvasHost", ANY, RESTART, "Canvas host"),
	OPT("browser", ANY, RESTART, "Browser control"),
	OPT("diagnostics", ANY, RESTART, "Diagnostics"),
	OPT("cli", ANY, RESTART, "CLI settings"),
	OPT("acp", ANY, RESTART, "Agent Client Protocol"),
	OPT("nodeHost", ANY, RESTART, "Node host"),
	OPT("media", ANY, RESTART, "Media handling"),
	OPT("web", ANY, RESTART, "Web channel"),
	OPT("memory", ANY, RESTART, "Memory"),
};

#undef OPT

const struct config_option *config_options_table(size_t *n)
{
	if (n)
		*n = ARRAY_SIZE(config_options);
	return config_options;
}

const char *config_options_reload_name(enum config_reload r)
{
	switch (r) {
	case CONFIG_RELOAD_HOT:
		return "hot";
	case CONFIG_RELOAD_RESTART:
		return "restart";
	case CONFIG_RELOAD_NONE:
		return "none";
	}
	return "restart";
}

const char *config_options_type_name(enum config_type t)
{
	static const char *const names[] = {
		[CFG_OBJECT] = "object", [CFG_STRING] = "string",
		[CFG_BOOL] = "boolean", [CFG_INT] = "integer",
		[CFG_NUMBER] = "number", [CFG_STRINGS] = "array",
		[CFG_ENUM] = "string", [CFG_SECRET] = "string",
		[CFG_ANY] = "any",
	};

	if ((unsigned)t >= ARRAY_SIZE(names))
		return "?";
	return names[t];
}

/* The zod-style name of a JSON value's type ("received ..."). */
static const char *config_options_json_type(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		return "object";
	case JSON_ARRAY:
		return "array";
	case JSON_STRING:
		return "string";
	case JSON_INTEGER:
	case JSON_REAL:
		return "number";
	case JSON_TRUE:
	case JSON_FALSE:
		return "boolean";
	case JSON_NULL:
		return "null";
	}
	return "unknown";
}

/* Number of wildcards used when pattern matches segs exactly, else -1. */
static int config_options_pattern_match(const char *pat,
					const char *const *segs, size_t n)
{
	size_t i;
	int wild = 0;

	for (i = 0; i < n; i++) {
		const char *dot = strchr(pat, '.');
		size_t len = dot ? (size_t)(dot - pat) : strlen(pat);

		if (len == 1 && pat[0] == '*')
			wild++;
		else if (strlen(segs[i]) != len ||
			 memcmp(pat, segs[i], len) != 0)
			return -1;
		if (!dot)
			return i + 1 == n ? wild : -1;
		pat = dot + 1;
	}
	return -1;
}

const struct config_option *config_options_match(const char *const *segs,
						 size_t n)
{
	const struct config_option *best = NULL;
	int best_wild = 0;
	size_t i;

	if (n == 0)
		return NULL;
	for (i = 0; i < ARRAY_SIZE(config_options); i++) {
		int w = config_options_pattern_match(config_options[i].key,
						     segs, n);

		if (w >= 0 && (!best || w < best_wild)) {
			best = &config_options[i];
			best_wild = w;
		}
	}
	return best;
}

const struct config_option *config_options_lookup(const char *dotted)
{
	const struct config_option *o = NULL;
	const char *segs[CONFIG_OPTIONS_MAX_DEPTH];
	char *copy = xstrdup(dotted ? dotted : "");
	char *save = NULL, *tok;
	size_t n = 0;

	for (tok = strtok_r(copy, ".", &save);
	     tok && n < ARRAY_SIZE(segs); tok = strtok_r(NULL, ".", &save))
		segs[n++] = tok;
	while (n > 0 && !o)
		o = config_options_match(segs, n--);
	free(copy);
	return o;
}

json_t *config_options_default(const struct config_option *o)
{
	if (!o || !o->def)
		return NULL;
	return json_loads(o->def, JSON_DECODE_ANY, NULL);
}

/* "a, b, c" of an enum's values into buf. */
static void config_options_enum_list(const struct config_option *o,
				     char *buf, size_t len)
{
	size_t i, off = 0;

	buf[0] = 0;
	for (i = 0; o->values && o->values[i] && off < len; i++)
		off += snprintf(buf + off, len - off, "%s%s", i ? ", " : "",
				o->values[i]);
}

static int config_options_enum_ok(const struct config_option *o,
				  const char *s)
{
	size_t i;

	for (i = 0; o->values && o->values[i]; i++)
		if (strcmp(o->values[i], s) == 0)
			return 1;
	return 0;
}

static int config_options_check_bind(const struct config_option *o,
				     const json_t *v, char *msg, size_t len)
{
	const char *s = json_string_value(v);
	const char *hint = NULL;
	char list[200];
	struct in_addr a4;
	struct in6_addr a6;

	if (!s || config_options_enum_ok(o, s))
		return 0;
	if (strcmp(s, "0.0.0.0") == 0 || strcmp(s, "::") == 0)
		hint = "use \"lan\" to listen on all interfaces";
	else if (strcmp(s, "localhost") == 0 || strcmp(s, "127.0.0.1") == 0 ||
		 strcmp(s, "::1") == 0)
		hint = "use \"loopback\" (127.0.0.1 and ::1)";
	else if (inet_pton(AF_INET, s, &a4) == 1 ||
		 inet_pton(AF_INET6, s, &a6) == 1)
		hint = "use \"custom\" with gateway.customBindHost for one "
		       "address";
	if (!hint)
		return 0; /* the plain enum message follows */
	config_options_enum_list(o, list, sizeof(list));
	snprintf(msg, len, "invalid value \"%s\" (expected one of: %s); %s",
		 s, list, hint);
	return -1;
}

static int config_options_check_ipv4(const struct config_option *o,
				     const json_t *v, char *msg, size_t len)
{
	struct in_addr a;
	const char *s = json_string_value(v);

	if (s && inet_pton(AF_INET, s, &a) == 1)
		return 0;
	snprintf(msg, len, "invalid IPv4 address \"%s\"", s ? s : "");
	return -1;
}

static int config_options_check_tls(const struct config_option *o,
				    const json_t *v, char *msg, size_t len)
{
	if (!json_is_true(v))
		return 0;
	snprintf(msg, len, "TLS is not supported on the gateway port; "
		 "terminate TLS in front (reverse proxy, tailscale serve, "
		 "SSH tunnel)");
	return -1;
}

static int config_options_check_path(const struct config_option *o,
				     const json_t *v, char *msg, size_t len)
{
	const char *s = json_string_value(v);

	if (s && (s[0] == 0 || s[0] == '/') && !strstr(s, "..") &&
	    !strpbrk(s, "?#\\ "))
		return 0;
	snprintf(msg, len, "invalid path \"%s\" (expected a URL path "
		 "starting with /)", s ? s : "");
	return -1;
}

/* A model reference: "provider/model" or {primary, fallbacks: [...]}. */
/* Provider headers: an object of string values (valid header text) or
 * SecretRefs. */
static int config_options_check_headers(const struct config_option *o,
					const json_t *v, char *msg,
					size_t len)
{
	const char *k;
	json_t *e;

	(void)o;
	if (!json_is_object(v)) {
		snprintf(msg, len, "must be an object of header: value");
		return -1;
	}
	json_object_foreach((json_t *)v, k, e) {
		/* a value may also be a SecretRef (checked at activation) */
		if (json_is_object(e) && json_object_get(e, "source") &&
		    *k && !strpbrk(k, " :\r\n"))
			continue;
		if (!*k || strpbrk(k, " :\r\n") || !json_is_string(e) ||
		    strpbrk(json_string_value(e), "\r\n")) {
			snprintf(msg, len, "header \"%.60s\": must be a "
				 "header name with a one-line string value", k);
			return -1;
		}
	}
	return 0;
}

static int config_options_check_model(const struct config_option *o,
				      const json_t *v, char *msg, size_t len)
{
	const json_t *p, *f, *e;
	size_t i;

	if (json_is_string(v))
		return 0;
	if (!json_is_object(v)) {
		snprintf(msg, len, "expected string or object, received %s",
			 config_options_json_type(v));
		return -1;
	}
	p = json_object_get(v, "primary");
	if (p && !json_is_string(p)) {
		snprintf(msg, len, "primary: expected string, received %s",
			 config_options_json_type(p));
		return -1;
	}
	f = json_object_get(v, "fallbacks");
	if (f && !json_is_array(f)) {
		snprintf(msg, len, "fallbacks: expected array, received %s",
			 config_options_json_type(f));
		return -1;
	}
	json_array_foreach(f, i, e) {
		if (!json_is_string(e)) {
			snprintf(msg, len, "fallbacks.%zu: expected string, "
				 "received %s", i, config_options_json_type(e));
			return -1;
		}
	}
	return 0;
}

static const char *const secret_sources[] = { "env", "file", "exec",
					     "store", NULL };
static const struct config_option secret_source_opt = {
	.key = "source", .type = CFG_ENUM, .values = secret_sources,
};

/* A SecretRef object: {source, provider?, id}, nothing else. */
static int config_options_check_ref(const json_t *v, const char *path,
				    struct config_issues *is)
{
	const char *k;
	const json_t *e;
	int bad = 0;

	json_object_foreach((json_t *)v, k, e) {
		char *p = xasprintf("%s.%s", path, k);

		if (strcmp(k, "source") == 0) {
			bad |= config_options_check(&secret_source_opt, e, p,
						    is);
		} else if (strcmp(k, "provider") == 0 ||
			   strcmp(k, "id") == 0) {
			if (!json_is_string(e)) {
				config_issues_add(is, p, "expected string, "
						  "received %s",
						  config_options_json_type(e));
				bad = -1;
			}
		} else {
			config_issues_add(is, p, "Unrecognized key: \"%s\"",
					  k);
			bad = -1;
		}
		free(p);
	}
	if (!json_object_get(v, "source")) {
		config_issues_add(is, path, "SecretRef requires \"source\" "
				  "(env, file, exec or store)");
		bad = -1;
	}
	e = json_object_get(v, "id");
	if (!e || (json_is_string(e) && json_string_length(e) == 0)) {
		config_issues_add(is, path, "SecretRef requires a non-empty "
				  "\"id\"");
		bad = -1;
	}
	return bad ? -1 : 0;
}

int config_options_check(const struct config_option *o, const json_t *v,
			 const char *path, struct config_issues *is)
{
	const char *want = NULL;
	char msg[400];
	size_t i;
	const json_t *e;

	switch (o->type) {
	case CFG_OBJECT:
		if (!json_is_object(v))
			want = "object";
		break;
	case CFG_STRING:
	case CFG_ENUM:
		if (!json_is_string(v))
			want = "string";
		break;
	case CFG_BOOL:
		if (!json_is_boolean(v))
			want = "boolean";
		break;
	case CFG_INT:
		if (!json_is_integer(v))
			want = "integer";
		break;
	case CFG_NUMBER:
		if (!json_is_number(v))
			want = "number";
		break;
	case CFG_STRINGS:
		if (!json_is_array(v))
			want = "array";
		break;
	case CFG_SECRET:
		if (json_is_object(v))
			return config_options_check_ref(v, path, is);
		if (!json_is_string(v))
			want = "string or SecretRef object";
		break;
	case CFG_ANY:
		break;
	}
	if (want) {
		config_issues_add(is, path, "expected %s, received %s", want,
				  config_options_json_type(v));
		return -1;
	}
	if (o->check && o->check(o, v, msg, sizeof(msg)) < 0) {
		config_issues_add(is, path, "%s", msg);
		return -1;
	}
	if (o->type == CFG_ENUM &&
	    !config_options_enum_ok(o, json_string_value(v))) {
		config_options_enum_list(o, msg, sizeof(msg));
		config_issues_add(is, path, "invalid value \"%s\" (expected "
				  "one of: %s)", json_string_value(v), msg);
		return -1;
	}
	if (o->type == CFG_INT && o->min < o->max &&
	    (json_integer_value(v) < o->min ||
	     json_integer_value(v) > o->max)) {
		config_issues_add(is, path, "invalid value %"
				  JSON_INTEGER_FORMAT " (expected an integer "
				  "between %" PRId64 " and %" PRId64 ")",
				  json_integer_value(v), o->min, o->max);
		return -1;
	}
	if (o->type == CFG_STRINGS) {
		int bad = 0;

		json_array_foreach(v, i, e) {
			char *p;

			if (json_is_string(e))
				continue;
			p = xasprintf("%s.%zu", path, i);
			config_issues_add(is, p, "expected string, received %s",
					  config_options_json_type(e));
			free(p);
			bad = -1;
		}
		return bad;
	}
	return 0;
}

struct config_options_walk {
	const char *segs[CONFIG_OPTIONS_MAX_DEPTH];
	size_t n;
	struct config_issues *is;
	int bad;
};

/* The dotted form of the current path (owned); "<root>" at the top. */
static char *config_options_path(const struct config_options_walk *w)
{
	size_t i, len = 1;
	char *s, *p;

	if (w->n == 0)
		return xstrdup("<root>");
	for (i = 0; i < w->n; i++)
		len += strlen(w->segs[i]) + 1;
	s = p = xmalloc(len);
	for (i = 0; i < w->n; i++)
		p += sprintf(p, "%s%s", i ? "." : "", w->segs[i]);
	return s;
}

static void config_options_walk_object(struct config_options_walk *w,
				       const json_t *obj, int open)
{
	const char *k;
	const json_t *v;

	json_object_foreach((json_t *)obj, k, v) {
		const struct config_option *o;
		char *path;

		if (w->n >= ARRAY_SIZE(w->segs))
			return;
		w->segs[w->n++] = k;
		o = config_options_match(w->segs, w->n);
		path = config_options_path(w);
		if (!o) {
			if (!open) {
				config_issues_add(w->is, path,
						  "Unrecognized key: \"%s\"",
						  k);
				w->bad = -1;
			}
		} else if (config_options_check(o, v, path, w->is) < 0) {
			w->bad = -1;
		} else if (o->type == CFG_OBJECT) {
			config_options_walk_object(w, v,
						   o->flags & CFG_F_OPEN);
		}
		free(path);
		w->n--;
	}
}

int config_options_validate(const json_t *root, struct config_issues *is)
{
	struct config_options_walk w = { .n = 0, .is = is, .bad = 0 };

	if (!json_is_object(root)) {
		config_issues_add(is, "<root>", "expected object, received %s",
				  config_options_json_type(root));
		return -1;
	}
	config_options_walk_object(&w, root, 0);
	return w.bad;
}
