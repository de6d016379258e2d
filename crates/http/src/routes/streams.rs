//! `/api/v1/status` and `/api/v1/streams/*`: the appliance's status, the streams, their
//! views and splits, and a stream's download (through [`crate::download`]).

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use wirecap_appliance::json::{status_json, stream_json};
use wirecap_store::timefmt::rfc3339;
use wirecap_store::{Listed, View};

use crate::error::ApiError;
use crate::packets::{DownloadAsk, download, selection};
use crate::query::Query;
use crate::respond::{blocking, json_ok, open, stream_name};
use crate::state::Shared;

pub(crate) async fn api_status(
    State(app): State<Shared>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let q = Query::parse(q.as_deref()).map_err(ApiError::api)?;
    let secs = match q.get("history") {
        None => 300,
        Some(v) => v
            .parse::<usize>()
            .map_err(|_| ApiError::bad_request("history must be a number of seconds").api())?,
    };
    let a = app.clone();
    let v = blocking(move || Ok(status_json(&a.engine, &a.ops, a.hostname(), secs)))
        .await
        .map_err(ApiError::api)?;
    Ok(json_ok(&v))
}

pub(crate) async fn api_streams(State(app): State<Shared>) -> Result<Response, ApiError> {
    let store = app.engine.store().clone();
    let list = blocking(move || Ok(store.listing()?))
        .await
        .map_err(ApiError::api)?;
    Ok(json_ok(&Value::Array(
        list.iter()
            .map(|e| match e {
                Listed::Stream(i) => stream_json(i),
                // Never hidden: named with why (as `wirecap list --json` does).
                Listed::Damaged { name, why } => {
                    json!({"name": name, "state": "damaged", "damage": why})
                }
            })
            .collect(),
    )))
}

pub(crate) async fn api_stream(
    State(app): State<Shared>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let name = stream_name(&name).map_err(ApiError::api)?;
    let a = app.clone();
    let info = blocking(move || Ok(open(&a, &name)?.info()?))
        .await
        .map_err(ApiError::api)?;
    Ok(json_ok(&stream_json(&info)))
}

pub(crate) async fn api_delete(
    State(app): State<Shared>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let name = stream_name(&name).map_err(ApiError::api)?;
    let a = app.clone();
    blocking(move || Ok(a.engine.store().delete_stream(&name)?))
        .await
        .map_err(ApiError::api)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub(crate) async fn api_views(
    State(app): State<Shared>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let name = stream_name(&name).map_err(ApiError::api)?;
    let a = app.clone();
    let n = name.clone();
    blocking(move || open(&a, &n).map(|_| ()))
        .await
        .map_err(ApiError::api)?;
    let views: Vec<Value> = std::iter::once(View::Single)
        .chain(View::splits())
        .map(|v| {
            json!({
                "view": v.to_string(),
                "splits": format!("/api/v1/streams/{name}/views/{v}/splits"),
            })
        })
        .collect();
    Ok(json_ok(&Value::Array(views)))
}

pub(crate) async fn api_splits(
    State(app): State<Shared>,
    Path((name, view)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let name = stream_name(&name).map_err(ApiError::api)?;
    let view = View::parse(&view).map_err(|e| ApiError::from(e).api())?;
    let a = app.clone();
    let n = name.clone();
    let splits = blocking(move || Ok(open(&a, &n)?.splits(view)?))
        .await
        .map_err(ApiError::api)?;
    let out: Vec<Value> = splits
        .iter()
        .map(|s| {
            json!({
                "index": s.index,
                "name": s.name,
                "start_ns": s.start_ts,
                "stop_ns": s.stop_ts,
                "start": rfc3339(s.start_ts),
                "stop": rfc3339(s.stop_ts),
                "packets": s.range.packets(),
                "bytes": s.range.pcap_bytes(),
                "download": format!("/api/v1/streams/{name}/pcap?view={view}&split={}", s.index),
            })
        })
        .collect();
    Ok(json_ok(&Value::Array(out)))
}

pub(crate) async fn api_pcap(
    State(app): State<Shared>,
    headers: HeaderMap,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let api = |e: ApiError| e.api();
    let q = Query::parse(q.as_deref()).map_err(api)?;
    let name = stream_name(&name).map_err(api)?;
    let selection = selection(&q, ["start", "stop", "view", "split"]).map_err(api)?;
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
    .map_err(api)
}
