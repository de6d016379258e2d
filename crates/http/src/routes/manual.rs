//! The manual's routes, byte for byte: `/sysmaster/*` (capture control and status),
//! `/plain/*` (lists as text), `/pcap/*` (downloads) and the "File Link" page. The formats
//! are [`wirecap_appliance::manual`]'s.

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use wirecap_appliance::engine::{CaptureInfo, EngineError};
use wirecap_appliance::manual::{self, ApplianceJson, ListRow, SplitRow};
use wirecap_store::timefmt::ctime;
use wirecap_store::{StreamReader, View, now_ns};

use crate::error::ApiError;
use crate::packets::{DownloadAsk, Selection, download, selection};
use crate::query::Query;
use crate::respond::{appliance_json, blocking, open, stream_name, text};
use crate::state::Shared;

#[utoipa::path(get, path = "/sysmaster/status", tag = "manual", responses((status = 200, description = "the manual's status lines", content_type = "text/plain")))]
pub(crate) async fn sys_status(State(app): State<Shared>) -> Result<Response, ApiError> {
    let engine = app.engine.clone();
    let f = blocking(move || Ok(engine.status_figures())).await?;
    Ok(text(manual::status_text(&f)))
}

#[utoipa::path(get, path = "/sysmaster/capture_start", tag = "manual", params(("StreamName" = String, Query)), responses((status = 200, description = "`{Status, Str}`", content_type = "application/json")))]
pub(crate) async fn sys_start(
    State(app): State<Shared>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let q = Query::parse(q.as_deref())?;
    let name = q.require("StreamName")?.to_owned();
    let engine = app.engine.clone();
    let res = blocking(move || Ok(engine.start(&name))).await?;
    Ok(capture_answer(res, manual::started_message))
}

#[utoipa::path(get, path = "/sysmaster/capture_stop", tag = "manual", responses((status = 200, description = "`{Status, Str}`", content_type = "application/json")))]
pub(crate) async fn sys_stop(State(app): State<Shared>) -> Result<Response, ApiError> {
    let engine = app.engine.clone();
    let res = blocking(move || Ok(engine.stop())).await?;
    Ok(capture_answer(res, manual::stopped_message))
}

/// The manual's JSON answer to capture_start / capture_stop: `message` words a success
/// (`[date] successfully started capture [name]`), an error keeps the same shape.
fn capture_answer(
    res: Result<CaptureInfo, EngineError>,
    message: fn(u64, &str) -> String,
) -> Response {
    match res {
        Ok(info) => appliance_json(
            StatusCode::OK,
            &ApplianceJson::ok(message(now_ns(), info.base.as_deref().unwrap_or(""))),
        ),
        Err(e) => appliance_json(
            crate::error::engine_status(&e),
            &ApplianceJson::err(format!("[{}] {e}", ctime(now_ns()))),
        ),
    }
}

#[utoipa::path(get, path = "/plain/list", tag = "manual", responses((status = 200, description = "one stream a line", content_type = "text/plain")))]
pub(crate) async fn plain_list(State(app): State<Shared>) -> Result<Response, ApiError> {
    let store = app.engine.store().clone();
    let rows = blocking(move || {
        Ok(store
            .list()?
            .into_iter()
            .map(|s| ListRow {
                name: s.meta.name,
                bytes: s.bytes,
                packets: s.packets,
                created_ns: s.meta.created_ns,
            })
            .collect::<Vec<_>>())
    })
    .await?;
    Ok(text(manual::list_csv(&rows)))
}

#[utoipa::path(get, path = "/plain/view", tag = "manual", params(("StreamName" = String, Query)), responses((status = 200, description = "the views of a stream", content_type = "text/plain")))]
pub(crate) async fn plain_view(
    State(app): State<Shared>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let q = Query::parse(q.as_deref())?;
    let name = stream_name(q.require("StreamName")?)?;
    let a = app.clone();
    let n = name.clone();
    blocking(move || open(&a, &n).map(|_| ())).await?;
    Ok(text(manual::view_csv(&name)))
}

fn split_rows(r: &StreamReader, view: View) -> Result<Vec<SplitRow>, ApiError> {
    Ok(r.splits(view)?
        .into_iter()
        .map(|s| SplitRow {
            name: s.name,
            bytes: s.range.pcap_bytes(),
            packets: s.range.packets(),
            start_ns: s.start_ts,
            stop_ns: s.stop_ts,
            exact: matches!(view, View::Size { .. }).then_some((view, s.index)),
        })
        .collect())
}

#[utoipa::path(get, path = "/plain/split", tag = "manual", params(("StreamName" = String, Query), ("StreamView" = String, Query)), responses((status = 200, description = "the splits of a view", content_type = "text/plain")))]
pub(crate) async fn plain_split(
    State(app): State<Shared>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let q = Query::parse(q.as_deref())?;
    let name = stream_name(q.require("StreamName")?)?;
    let view = View::parse(q.require("StreamView")?)?;
    let a = app.clone();
    let n = name.clone();
    let rows = blocking(move || split_rows(&open(&a, &n)?, view)).await?;
    Ok(text(manual::split_csv(&name, &rows)))
}

#[utoipa::path(get, path = "/pcap/single", tag = "manual", params(("StreamName" = String, Query), ("format" = Option<String>, Query), ("compress" = Option<String>, Query), ("Filter" = Option<String>, Query, description = "the appliance's filter language"), ("FilterBPF" = Option<String>, Query, description = "tcpdump syntax")), responses((status = 200, description = "the packets as pcap (Range supported)", content_type = "application/vnd.tcpdump.pcap")))]
pub(crate) async fn pcap_single(
    State(app): State<Shared>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let q = Query::parse(q.as_deref())?;
    let name = stream_name(q.require("StreamName")?)?;
    download(
        &app,
        &headers,
        DownloadAsk {
            name,
            selection: Selection::All,
            format: q.get("format"),
            compress: q.get("compress"),
            filter: q.get("Filter"),
            bpf: q.get("FilterBPF"),
            names: ("Filter", "FilterBPF"),
        },
    )
    .await
}

#[utoipa::path(get, path = "/pcap/splittime", tag = "manual", params(("StreamName" = String, Query), ("StreamView" = String, Query), ("StreamSplit" = usize, Query), ("format" = Option<String>, Query), ("compress" = Option<String>, Query), ("Filter" = Option<String>, Query, description = "the appliance's filter language"), ("FilterBPF" = Option<String>, Query, description = "tcpdump syntax")), responses((status = 200, description = "the packets as pcap (Range supported)", content_type = "application/vnd.tcpdump.pcap")))]
pub(crate) async fn pcap_splittime(
    State(app): State<Shared>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let q = Query::parse(q.as_deref())?;
    let name = stream_name(q.require("StreamName")?)?;
    let selection = selection(&q, ["Start", "Stop", "StreamView", "Split"])?;
    download(
        &app,
        &headers,
        DownloadAsk {
            name,
            selection,
            format: q.get("format"),
            compress: q.get("compress"),
            filter: q.get("Filter"),
            bpf: q.get("FilterBPF"),
            names: ("Filter", "FilterBPF"),
        },
    )
    .await
}

/// The manual's "File Link": the web UI's page of that stream (its views and splits).
pub(crate) async fn files_page(RawQuery(q): RawQuery) -> Result<Response, ApiError> {
    let q = Query::parse(q.as_deref())?;
    let name = stream_name(q.require("StreamName")?)?;
    Ok(Redirect::to(&format!("/#/files/{name}")).into_response())
}
