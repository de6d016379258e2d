//! `/api/v1/status` and `/api/v1/streams/*`: the appliance's status, the streams, their
//! views and splits, and a stream's download (through [`crate::download`]).

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use wirecap_appliance::api::{Listing, Status, Stream};
use wirecap_store::View;
use wirecap_store::timefmt::rfc3339;

use crate::error::{ApiError, ErrorBody};
use crate::packets::{DownloadAsk, download, selection};
use crate::query::Query;
use crate::respond::{blocking, json_ok, open, stream_name};
use crate::state::Shared;

/// One view of a stream and where its splits are listed.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ViewLink {
    pub splits: String,
    /// `single`, `minute`, `hour`, …
    pub view: String,
}

/// One split of a view and its download.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Split {
    /// Its size as a pcap file.
    pub bytes: u64,
    pub download: String,
    pub index: u64,
    pub name: String,
    pub packets: u64,
    pub start: String,
    pub start_ns: u64,
    pub stop: String,
    pub stop_ns: u64,
}

#[utoipa::path(get, path = "/api/v1/status", tag = "streams",
    params(("history" = Option<usize>, Query, description = "seconds of counters history (300)")),
    responses((status = 200, body = Status), (status = "default", body = ErrorBody)))]
pub(crate) async fn api_status(
    State(app): State<Shared>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let q = Query::parse(q.as_deref())?;
    let secs = match q.get("history") {
        None => 300,
        Some(v) => v
            .parse::<usize>()
            .map_err(|_| ApiError::bad_request("history must be a number of seconds"))?,
    };
    let a = app.clone();
    let v = blocking(move || Ok(Status::of(&a.engine, &a.ops, a.hostname(), secs))).await?;
    Ok(json_ok(&v))
}

#[utoipa::path(get, path = "/api/v1/streams", tag = "streams",
    params(("probe" = Option<String>, Query, description = "only this probe's streams (with an archive)")),
    responses((status = 200, body = Vec<Stream>), (status = "default", body = ErrorBody)))]
pub(crate) async fn api_streams(
    State(app): State<Shared>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let q = Query::parse(q.as_deref())?;
    let probe = q.get("probe").filter(|p| !p.is_empty()).map(str::to_owned);
    let a = app.clone();
    let list = blocking(move || {
        let list = a.engine.store().listing()?;
        Ok(list
            .into_iter()
            .map(Listing::of)
            .map(|l| match l {
                Listing::Stream(s) => Listing::Stream(Box::new(s.with_probe(&a.engine))),
                d => d,
            })
            .filter(|l| match (&probe, l) {
                (None, _) => true,
                (Some(p), Listing::Stream(s)) => s.probe.as_ref() == Some(p),
                (Some(_), _) => false,
            })
            .collect::<Vec<_>>())
    })
    .await?;
    Ok(json_ok(&list))
}

#[utoipa::path(get, path = "/api/v1/streams/{name}", tag = "streams",
    params(("name" = String, Path, description = "the stored stream name")),
    responses((status = 200, body = Stream), (status = "default", body = ErrorBody)))]
pub(crate) async fn api_stream(
    State(app): State<Shared>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let name = stream_name(&name)?;
    let a = app.clone();
    let info = blocking(move || Ok(open(&a, &name)?.info()?)).await?;
    Ok(json_ok(&Stream::of(&info)))
}

#[utoipa::path(delete, path = "/api/v1/streams/{name}", tag = "streams",
    params(("name" = String, Path, description = "the stored stream name")),
    responses((status = 204, description = "deleted"), (status = "default", body = ErrorBody)))]
pub(crate) async fn api_delete(
    State(app): State<Shared>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let name = stream_name(&name)?;
    let a = app.clone();
    blocking(move || Ok(a.engine.delete_stream(&name)?)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[utoipa::path(get, path = "/api/v1/streams/{name}/views", tag = "streams",
    params(("name" = String, Path, description = "the stored stream name")),
    responses((status = 200, body = Vec<ViewLink>), (status = "default", body = ErrorBody)))]
pub(crate) async fn api_views(
    State(app): State<Shared>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let name = stream_name(&name)?;
    let a = app.clone();
    let n = name.clone();
    blocking(move || open(&a, &n).map(|_| ())).await?;
    let views: Vec<ViewLink> = std::iter::once(View::Single)
        .chain(View::splits())
        .map(|v| ViewLink {
            splits: format!("/api/v1/streams/{name}/views/{v}/splits"),
            view: v.to_string(),
        })
        .collect();
    Ok(json_ok(&views))
}

#[utoipa::path(get, path = "/api/v1/streams/{name}/views/{view}/splits", tag = "streams",
    params(("name" = String, Path, description = "the stored stream name"),
        ("view" = String, Path, description = "`single`, `minute`, `hour`, …")),
    responses((status = 200, body = Vec<Split>), (status = "default", body = ErrorBody)))]
pub(crate) async fn api_splits(
    State(app): State<Shared>,
    Path((name, view)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let name = stream_name(&name)?;
    let view = View::parse(&view)?;
    let a = app.clone();
    let n = name.clone();
    let splits = blocking(move || Ok(open(&a, &n)?.splits(view)?)).await?;
    let out: Vec<Split> = splits
        .iter()
        .map(|s| Split {
            bytes: s.range.pcap_bytes(),
            download: format!("/api/v1/streams/{name}/pcap?view={view}&split={}", s.index),
            index: s.index,
            name: s.name.clone(),
            packets: s.range.packets(),
            start: rfc3339(s.start_ts),
            start_ns: s.start_ts,
            stop: rfc3339(s.stop_ts),
            stop_ns: s.stop_ts,
        })
        .collect();
    Ok(json_ok(&out))
}

#[utoipa::path(get, path = "/api/v1/streams/{name}/pcap", tag = "streams",
    params(("name" = String, Path, description = "the stored stream name"),
        ("start" = Option<String>, Query), ("stop" = Option<String>, Query),
        ("view" = Option<String>, Query), ("split" = Option<usize>, Query),
        ("format" = Option<String>, Query, description = "pcap (default), pcapng, …"),
        ("compress" = Option<String>, Query, description = "gzip or zstd"),
        ("filter" = Option<String>, Query, description = "the appliance's filter language"),
        ("bpf" = Option<String>, Query, description = "tcpdump syntax, ANDed with filter")),
    responses((status = 200, description = "the packets (Range supported)", content_type = "application/vnd.tcpdump.pcap"),
        (status = 206, description = "a range of them"),
        (status = "default", body = ErrorBody)))]
pub(crate) async fn api_pcap(
    State(app): State<Shared>,
    headers: HeaderMap,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let q = Query::parse(q.as_deref())?;
    let name = stream_name(&name)?;
    let selection = selection(&q, ["start", "stop", "view", "split"])?;
    download(
        &app,
        &headers,
        DownloadAsk {
            name,
            selection,
            format: q.get("format"),
            compress: q.get("compress"),
            filter: q.get("filter"),
            bpf: q.get("bpf"),
            names: ("filter", "bpf"),
        },
    )
    .await
}
