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
    for (path, item) in crate::session::openapi_paths()
        .into_iter()
        .chain(crate::api_ui::openapi_paths())
        .chain(crate::update::openapi_paths())
        .chain(crate::api_admin::openapi_paths())
        .chain(crate::api_ops::openapi_paths())
    {
        doc["paths"][path] = item;
    }
    doc
}
