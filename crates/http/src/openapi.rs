//! The OpenAPI 3.1 document of the JSON API (and of the manual's routes), served at
//! `/api/v1/openapi.json`.

use serde_json::{Value, json};

fn p(name: &str, inn: &str, desc: &str, required: bool) -> Value {
    json!({"name": name, "in": inn, "description": desc, "required": required, "schema": {"type": "string"}})
}

fn pcap_responses() -> Value {
    json!({
        "200": {"description": "The capture file (pcap with ns timestamps, or pcapng). Unfiltered, uncompressed pcap has an exact Content-Length and honours Range.",
                "content": {"application/vnd.tcpdump.pcap": {}, "application/x-pcapng": {}}},
        "206": {"description": "Part of the file (Range)"},
        "400": {"$ref": "#/components/responses/Error"},
        "404": {"$ref": "#/components/responses/Error"},
        "416": {"description": "Range not satisfiable"},
        "503": {"description": "Too many downloads at once"}
    })
}

fn download_params() -> Vec<Value> {
    vec![
        p(
            "format",
            "query",
            "pcap (default) or pcapng; also Accept: application/x-pcapng",
            false,
        ),
        p(
            "compress",
            "query",
            "none, gzip or zstd; default: from Accept-Encoding",
            false,
        ),
    ]
}

/// The document.
pub fn document() -> Value {
    let name = p(
        "name",
        "path",
        "Full stored stream name (NAME_YYYYMMDD_HHMM)",
        true,
    );
    let mut pcap_params = vec![
        name.clone(),
        p(
            "start",
            "query",
            "First packet time, inclusive: ns since the epoch (optionally with ULL), ISO-8601, or 20150620_18:36:47.780.373.248",
            false,
        ),
        p("stop", "query", "Stop time, exclusive (same forms)", false),
        p(
            "view",
            "query",
            "A view (split_1sec … split_1TB), with split",
            false,
        ),
        p(
            "split",
            "query",
            "Index of the split in the view, from 0",
            false,
        ),
        p(
            "filter",
            "query",
            "Appliance filter language, e.g. `ipv4.proto == udp`",
            false,
        ),
        p(
            "bpf",
            "query",
            "tcpdump filter syntax, e.g. `udp port 53`",
            false,
        ),
    ];
    pcap_params.extend(download_params());
    let mut single_params = vec![
        p("StreamName", "query", "Full stored stream name", true),
        p("Filter", "query", "Appliance filter language", false),
        p("FilterBPF", "query", "tcpdump filter syntax", false),
    ];
    single_params.extend(download_params());
    let mut splittime_params = vec![
        p("StreamName", "query", "Full stored stream name", true),
        p(
            "Start",
            "query",
            "ns since the epoch with ULL suffix, or NULL for the beginning",
            false,
        ),
        p(
            "Stop",
            "query",
            "ns since the epoch with ULL suffix (exclusive), or NULL for the end",
            false,
        ),
        p(
            "StreamView",
            "query",
            "With Split: address one split of a view exactly (size splits)",
            false,
        ),
        p("Split", "query", "Index of the split in StreamView", false),
        p("Filter", "query", "Appliance filter language", false),
        p("FilterBPF", "query", "tcpdump filter syntax", false),
    ];
    splittime_params.extend(download_params());
    let text = |d: &str| json!({"200": {"description": d, "content": {"text/plain": {}}}, "400": {"$ref": "#/components/responses/Error"}, "404": {"$ref": "#/components/responses/Error"}});
    let appliance_json = |d: &str| {
        json!({
            "200": {"description": d, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ApplianceResult"}}}},
            "400": {"$ref": "#/components/responses/Error"},
            "403": {"$ref": "#/components/responses/Error"},
            "409": {"$ref": "#/components/responses/Error"},
            "503": {"$ref": "#/components/responses/Error"}
        })
    };
    let ok_json = |d: &str| json!({"200": {"description": d, "content": {"application/json": {}}}, "400": {"$ref": "#/components/responses/ApiError"}, "404": {"$ref": "#/components/responses/ApiError"}});
    let mut doc = json!({
        "openapi": "3.1.0",
        "info": {
            "title": "wirecap appliance API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Every route needs HTTP Basic credentials. The /sysmaster, /plain and /pcap routes are the appliance manual's, byte for byte; /api/v1 is the JSON API. Times are UTC."
        },
        "security": [{"basic": []}],
        "components": {
            "securitySchemes": {"basic": {"type": "http", "scheme": "basic"}},
            "schemas": {
                "ApplianceResult": {"type": "object", "properties": {"Status": {"type": "boolean"}, "Str": {"type": "string"}}, "required": ["Status", "Str"]},
                "ApiError": {"type": "object", "properties": {"error": {"type": "string"}, "status": {"type": "integer"}}, "required": ["error", "status"]}
            },
            "responses": {
                "Error": {"description": "Refused", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ApplianceResult"}}}},
                "ApiError": {"description": "Refused", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ApiError"}}}}
            }
        },
        "paths": {
            "/sysmaster/status": {"get": {"summary": "Capture status as `key, value` lines", "responses": text("uptime, packets_received, … capture_active")}},
            "/sysmaster/capture_start": {"get": {"summary": "Start a capture into NAME_YYYYMMDD_HHMM", "parameters": [p("StreamName", "query", "Stream name", true)], "responses": appliance_json("Started")}},
            "/sysmaster/capture_stop": {"get": {"summary": "Stop the running capture", "responses": appliance_json("Stopped")}},
            "/plain/list": {"get": {"summary": "Streams, newest first, as the manual's CSV", "responses": text("Filename , Size Bytes , Packet Count , Date ,Single PCAP Link,File Link,")}},
            "/plain/view": {"get": {"summary": "The split views of a stream", "parameters": [p("StreamName", "query", "Full stored stream name", true)], "responses": text("SplitMode , Link")}},
            "/plain/split": {"get": {"summary": "The files of one view, with download URLs", "parameters": [p("StreamName", "query", "Full stored stream name", true), p("StreamView", "query", "split_1sec … split_1TB", true)], "responses": text("Name , Size Bytes, Packet Count, URL")}},
            "/pcap/single": {"get": {"summary": "A whole stream", "parameters": single_params, "responses": pcap_responses()}},
            "/pcap/splittime": {"get": {"summary": "The packets with Start <= ts < Stop, or one split", "parameters": splittime_params, "responses": pcap_responses()}},
            "/metrics": {"get": {"summary": "Prometheus metrics", "responses": {"200": {"description": "OpenMetrics text"}}}},
            "/api/v1/status": {"get": {"summary": "Capture status, link, drops by reason, and per-second history", "parameters": [p("history", "query", "Seconds of history (default 300, at most 3600)", false)], "responses": ok_json("Status")}},
            "/api/v1/streams": {"get": {"summary": "Every stream with its totals, newest first", "responses": ok_json("Streams")}},
            "/api/v1/streams/{name}": {
                "get": {"summary": "One stream", "parameters": [name.clone()], "responses": ok_json("Stream")},
                "delete": {"summary": "Delete a stream (admin; not while it is captured)", "parameters": [name.clone()], "responses": {"204": {"description": "Deleted"}, "404": {"$ref": "#/components/responses/ApiError"}, "409": {"$ref": "#/components/responses/ApiError"}}}
            },
            "/api/v1/streams/{name}/views": {"get": {"summary": "Views of a stream", "parameters": [name.clone()], "responses": ok_json("Views")}},
            "/api/v1/streams/{name}/views/{view}/splits": {"get": {"summary": "Files of one view: index, name, time window, packets, bytes, download URL", "parameters": [name.clone(), p("view", "path", "single, split_1sec … split_1TB", true)], "responses": ok_json("Splits")}},
            "/api/v1/streams/{name}/pcap": {"get": {"summary": "Download a stream, a time range or one split", "parameters": pcap_params, "responses": pcap_responses()}},
            "/api/v1/capture/start": {"post": {"summary": "Start a capture (admin)", "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}}}}, "responses": {"200": {"description": "Started"}, "400": {"$ref": "#/components/responses/ApiError"}, "403": {"$ref": "#/components/responses/ApiError"}, "409": {"$ref": "#/components/responses/ApiError"}, "415": {"$ref": "#/components/responses/ApiError"}, "503": {"$ref": "#/components/responses/ApiError"}}}},
            "/api/v1/capture/stop": {"post": {"summary": "Stop the capture (admin); send Content-Type: application/json", "responses": {"200": {"description": "Stopped"}, "409": {"$ref": "#/components/responses/ApiError"}, "415": {"$ref": "#/components/responses/ApiError"}}}},
            "/api/v1/interfaces": {"get": {"summary": "Network interfaces: state, speed, counters", "responses": ok_json("Interfaces")}},
            "/api/v1/config": {"get": {"summary": "The running configuration (no secrets)", "responses": ok_json("Config")}},
            "/api/v1/forward": {
                "get": {"summary": "The inline forwarder (bump in the wire): interface, capture IP, peer pairs, capture mode, neighbours and counters; {\"enabled\": false} when not configured", "responses": ok_json("Forwarder")},
                "put": {"summary": "Change the capture IP, the pairs or the capture mode (admin; Content-Type: application/json; kept in wirecap.toml). Body: any of {\"inline\": \"10.9.0.1/24\", \"pairs\": [\"10.9.0.2=10.9.0.3\"], \"capture_mode\": \"ingress|egress|inline|both\"}",
                        "responses": {"200": {"description": "The forwarder after the change"}, "400": {"$ref": "#/components/responses/ApiError"}, "403": {"$ref": "#/components/responses/ApiError"}, "409": {"$ref": "#/components/responses/ApiError"}, "415": {"$ref": "#/components/responses/ApiError"}}}
            },
            "/api/v1/openapi.json": {"get": {"summary": "This document", "responses": ok_json("OpenAPI 3.1")}}
        }
    });
    // The browser UI's routes (session login, paged lists, filter checks).
    for (path, item) in session_paths()
        .into_iter()
        .chain(ui_paths())
        .chain(update_paths())
        .chain(admin_paths())
        .chain(ops_paths())
    {
        doc["paths"][path] = item;
    }
    doc
}

/// The session routes for the OpenAPI document.
fn session_paths() -> Vec<(&'static str, Value)> {
    let err = json!({"$ref": "#/components/responses/ApiError"});
    vec![(
        "/api/v1/session",
        json!({
            "get": {"summary": "The browser session's user, role and CSRF token (cookie wirecap_session)",
                    "responses": {"200": {"description": "Signed in"}, "401": err}},
            "post": {"summary": "Sign in: {user, password} → session cookie (HttpOnly, SameSite=Strict) and CSRF token; no credentials needed",
                     "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object",
                         "properties": {"user": {"type": "string"}, "password": {"type": "string"}}, "required": ["user", "password"]}}}},
                     "responses": {"200": {"description": "Signed in; Set-Cookie"}, "401": err, "403": err, "415": err}},
            "delete": {"summary": "Sign out (X-CSRF-Token required with the cookie)", "responses": {"204": {"description": "Signed out"}}},
        }),
    )]
}

/// These routes for the OpenAPI document.
fn ui_paths() -> Vec<(&'static str, Value)> {
    let q = |name: &str, desc: &str| json!({"name": name, "in": "query", "required": false, "description": desc, "schema": {"type": "string"}});
    let name = json!({"name": "name", "in": "path", "required": true, "description": "Full stored stream name", "schema": {"type": "string"}});
    let page = [
        q("offset", "First row (default 0)"),
        q("limit", "Rows (default 100, at most 1000)"),
    ];
    let ok = |d: &str| json!({"200": {"description": d}, "400": {"$ref": "#/components/responses/ApiError"}, "404": {"$ref": "#/components/responses/ApiError"}});
    let body = |props: Value| json!({"required": true, "content": {"application/json": {"schema": {"type": "object", "properties": props}}}});
    vec![
        (
            "/api/v1/ui/streams",
            json!({"get": {"summary": "One page of streams, newest first", "parameters": [page[0], page[1], q("q", "Name contains (case-insensitive)")], "responses": ok("{total, offset, limit, streams}")}}),
        ),
        (
            "/api/v1/ui/streams/{name}",
            json!({"get": {"summary": "A stream and the names of its views", "parameters": [name], "responses": ok("The stream")}}),
        ),
        (
            "/api/v1/ui/streams/{name}/views",
            json!({"get": {"summary": "Split count of every view", "parameters": [name], "responses": ok("{views: [{view, splits}]}")}}),
        ),
        (
            "/api/v1/ui/streams/{name}/views/{view}/splits",
            json!({"get": {"summary": "One page of a view's splits with download links", "parameters": [name, {"name": "view", "in": "path", "required": true, "schema": {"type": "string"}}, page[0], page[1]], "responses": ok("{total, offset, limit, splits}")}}),
        ),
        (
            "/api/v1/ui/streams/{name}/analysis",
            json!({"post": {"summary": "Protocols, talkers, ports, flows and a time series of the packets that match", "parameters": [name], "requestBody": body(json!({"filter": {"type": "string"}, "bpf": {"type": "string"}, "start": {"type": "string"}, "stop": {"type": "string"}})), "responses": ok("The analysis")}}),
        ),
        (
            "/api/v1/ui/history",
            json!({"get": {"summary": "Capture rate columns for charts (at most 360 points)", "parameters": [q("seconds", "Window (default 300)")], "responses": ok("{interval_s, t, bps, pps, drops}")}}),
        ),
        (
            "/api/v1/ui/system",
            json!({"get": {"summary": "Hostname, version, disk total/free, oldest packet on disk", "responses": ok("System figures")}}),
        ),
        (
            "/api/v1/ui/interfaces",
            json!({"get": {"summary": "Interfaces with driver, MAC, link, speed and counters, and the capture interface", "responses": ok("Interfaces")}}),
        ),
        (
            "/api/v1/ui/capture/interface",
            json!({"put": {"summary": "Write the capture interface to wirecap.toml for the next start (admin)", "requestBody": body(json!({"interface": {"type": "string"}})), "responses": ok("{message}")}}),
        ),
        (
            "/api/v1/ui/filter/check",
            json!({"post": {"summary": "Compile a filter and say where it is wrong", "requestBody": body(json!({"language": {"type": "string", "enum": ["appliance", "bpf"]}, "text": {"type": "string"}})), "responses": ok("{ok} or {ok: false, error: {kind, message, offset}}")}}),
        ),
    ]
}

/// The update routes for the OpenAPI document.
fn update_paths() -> Vec<(&'static str, Value)> {
    let err = json!({"$ref": "#/components/responses/ApiError"});
    vec![
        (
            "/api/v1/releases",
            json!({
                "get": {"summary": "Installed releases, the running and selected one, a pending restart, the update history",
                        "responses": {"200": {"description": "Releases"}}},
                "post": {"summary": "Upload a release archive (admin): wirecap-VERSION.tar.gz from `wirecap release pack`, as Content-Type: application/gzip; checked (checksum, signature, ELF, --version) before it is installed",
                         "requestBody": {"required": true, "content": {"application/gzip": {}}},
                         "responses": {"201": {"description": "Installed"}, "200": {"description": "Already installed (same binary)"},
                                       "403": err, "409": err, "413": err, "415": err, "422": err}},
            }),
        ),
        (
            "/api/v1/releases/{version}/activate",
            json!({
                "post": {"summary": "Select a release and restart into it (admin): seals the capture, answers 202, re-executes; rolled back unless healthy within [update] health_timeout_secs. Send Content-Type: application/json",
                         "parameters": [{"name": "version", "in": "path", "required": true, "schema": {"type": "string"}}],
                         "responses": {"202": {"description": "Restarting; retry after Retry-After seconds"}, "403": err, "404": err, "409": err, "415": err}},
            }),
        ),
    ]
}

/// These routes for the OpenAPI document.
fn admin_paths() -> Vec<(&'static str, Value)> {
    let err = json!({"$ref": "#/components/responses/ApiError"});
    let body = |props: Value, required: &[&str]| json!({"required": true, "content": {"application/json": {"schema": {"type": "object", "properties": props, "required": required}}}});
    let name =
        json!({"name": "name", "in": "path", "required": true, "schema": {"type": "string"}});
    let role = json!({"type": "string", "enum": ["admin", "viewer"]});
    vec![
        (
            "/api/v1/users",
            json!({
                "get": {"summary": "Users and their roles (never password hashes)", "responses": {"200": {"description": "[{name, role}]"}}},
                "post": {"summary": "Add a user (admin); role viewer unless given", "requestBody": body(json!({"name": {"type": "string"}, "password": {"type": "string", "minLength": 8}, "role": role}), &["name", "password"]),
                         "responses": {"201": {"description": "Added"}, "400": err, "403": err, "409": err}},
            }),
        ),
        (
            "/api/v1/users/{name}",
            json!({
                "delete": {"summary": "Remove a user (admin; not the last admin); their sessions end", "parameters": [name],
                           "responses": {"204": {"description": "Removed"}, "403": err, "404": err, "409": err}},
                "patch": {"summary": "Change a password (admin, or the user themself with current_password) and/or a role (admin; the last admin stays admin); the user's sessions end",
                          "parameters": [name], "requestBody": body(json!({"password": {"type": "string", "minLength": 8}, "current_password": {"type": "string"}, "role": role}), &[]),
                          "responses": {"200": {"description": "{name, role}"}, "400": err, "403": err, "404": err, "409": err}},
            }),
        ),
        (
            "/api/v1/hostname",
            json!({
                "get": {"summary": "The appliance's hostname and whether the OS has it", "responses": {"200": {"description": "{hostname, os_hostname, apply_to_os}"}}},
                "put": {"summary": "Set the hostname (admin; RFC 1123): saved in wirecap.toml, applied to the OS when apply_hostname_to_os = true and the process has CAP_SYS_ADMIN",
                        "requestBody": body(json!({"hostname": {"type": "string"}}), &["hostname"]),
                        "responses": {"200": {"description": "{hostname, os}"}, "400": err, "403": err}},
            }),
        ),
        (
            "/api/v1/report",
            json!({"post": {"summary": "Start a system report (admin): logs, status and counters, config without secrets, streams, interfaces, system; optionally age-encrypted",
                            "requestBody": {"required": false, "content": {"application/json": {"schema": {"type": "object", "properties": {"recipient": {"type": "string", "description": "age x25519 public key, age1…"}}}}}},
                            "responses": {"202": {"description": "The job: {id, state, steps_done, steps_total}"}, "400": err, "403": err, "409": err}}}),
        ),
        (
            "/api/v1/report/{id}",
            json!({"get": {"summary": "A report job's progress and, when done, its file and download link",
                           "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "integer"}}],
                           "responses": {"200": {"description": "{id, state: running|done|failed, steps_done, steps_total, step, file, download, error}"}, "404": err}}}),
        ),
        (
            "/api/v1/reports",
            json!({"get": {"summary": "Reports kept in DIR/upload, newest first", "responses": {"200": {"description": "[{file, bytes, modified, download}]"}}}}),
        ),
        (
            "/api/v1/reports/{file}",
            json!({"get": {"summary": "Download a report (.tar.gz or .tar.gz.age)",
                           "parameters": [{"name": "file", "in": "path", "required": true, "schema": {"type": "string"}}],
                           "responses": {"200": {"description": "The archive", "content": {"application/gzip": {}, "application/octet-stream": {}}}, "404": err}}}),
        ),
    ]
}

/// These routes for the OpenAPI document.
fn ops_paths() -> Vec<(&'static str, Value)> {
    let err = json!({"$ref": "#/components/responses/ApiError"});
    let field_err =
        json!({"description": "A field is invalid: {\"error\", \"status\": 400, \"field\"}"});
    let name = json!({"name": "name", "in": "path", "required": true, "description": "Schedule name", "schema": {"type": "string"}});
    let stream = json!({"name": "name", "in": "path", "required": true, "description": "Full stored stream name", "schema": {"type": "string"}});
    let schedule = json!({
        "type": "object",
        "description": "Either cron (5 fields, or 6 with seconds first) and duration (\"1h 30m\", \"90s\"), or days ([\"mon\", …] or [\"daily\"]) with start and stop (HH:MM local time). timezone: IANA name (default: the file's timezone, else UTC). stream: base name of the streams (default: name).",
        "properties": {
            "name": {"type": "string"}, "cron": {"type": "string"}, "duration": {"type": "string"},
            "days": {"type": "array", "items": {"type": "string"}}, "start": {"type": "string"},
            "stop": {"type": "string"}, "timezone": {"type": "string"}, "stream": {"type": "string"},
            "enabled": {"type": "boolean"}
        },
        "required": ["name"]
    });
    let body = json!({"required": true, "content": {"application/json": {"schema": schedule}}});
    let status = json!({"200": {"description": "The schedule with its status: active, current_stream, next_start, next_stop, suspended_until, last_event {at, text}"}});
    vec![
        (
            "/api/v1/schedules",
            json!({
                "get": {"summary": "Capture schedules with their status", "responses": status},
                "post": {"summary": "Add a schedule (admin)", "requestBody": body, "responses": {"201": {"description": "Added"}, "400": field_err, "403": err, "409": err}}
            }),
        ),
        (
            "/api/v1/schedules/{name}",
            json!({
                "get": {"summary": "One schedule with its status", "parameters": [name], "responses": status},
                "put": {"summary": "Replace (or add) a schedule (admin)", "parameters": [name], "requestBody": body, "responses": {"200": {"description": "Saved"}, "400": field_err, "403": err}},
                "delete": {"summary": "Remove a schedule (admin); its running capture is stopped", "parameters": [name], "responses": {"204": {"description": "Removed"}, "403": err, "404": err}}
            }),
        ),
        (
            "/api/v1/retention",
            json!({
                "get": {"summary": "Disk budget, watermarks and the retention status (bytes used, oldest packet on disk, last deletion, warning)", "responses": {"200": {"description": "Retention"}}},
                "put": {"summary": "Change budget (\"50GB\" or \"80%\"), high_watermark, low_watermark, segment (admin); null removes a key", "responses": {"200": {"description": "Saved"}, "400": field_err, "403": err}}
            }),
        ),
        (
            "/api/v1/streams/{name}/pin",
            json!({
                "put": {"summary": "Pin ({\"pinned\": true}) or unpin a stream (admin): retention never deletes a pinned stream", "parameters": [stream], "responses": {"200": {"description": "Saved"}, "403": err, "404": err}}
            }),
        ),
    ]
}
